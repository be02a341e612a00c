"""ECR control plane with boto3: repository, lifecycle policy, auth token, tag lookups, retag.

boto3's standard configuration applies (profiles, env credentials, ``AWS_ENDPOINT_URL_ECR``), which
is how tests point it at moto. Image bytes never go through here (containers-and-registries.md
§6.3, §7). The auth token is a secret: kept in memory until ``expiresAt`` minus a margin, optionally
in a 0600 file under the cache dir (``LMI_BUILD_ECR_TOKEN_CACHE=1``), never logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from builder import console
from builder.diagnostics import BuilderError
from builder.registry.deadlines import AwsBounds, aws_config, is_aws_timeout

TOKEN_MARGIN_S = 15 * 60
_TOKENS: dict[str, tuple[str, str, float]] = {}  # key -> (user, password, expires epoch)

# Registry host DNS suffix per partition (containers-and-registries.md §6.4, lmi-runtime.md §12).
_SUFFIX = [
    ("cn-", "amazonaws.com.cn"),        # aws-cn
    ("us-gov-", "amazonaws.com"),       # aws-us-gov
    ("us-isob-", "sc2s.sgov.gov"),      # aws-iso-b
    ("us-iso-", "c2s.ic.gov"),          # aws-iso
    ("eusc-", "amazonaws.eu"),          # aws-eusc
]


def registry_domain(region: str) -> str:
    for prefix, suffix in _SUFFIX:
        if region.startswith(prefix):
            return suffix
    return "amazonaws.com"  # aws


def registry_host(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.{registry_domain(region)}"


class ImmutableTagError(BuilderError):
    pass


class _Bounded:
    """The boto3 client, with its transport errors (botocore's ``BotoCoreError``: timeouts, refused
    or lost connections) turned into a located message; ``ClientError`` answers pass unchanged to
    the callers that handle them."""

    def __init__(self, client: Any, bounds: AwsBounds):
        self._client, self._bounds = client, bounds

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            from botocore.exceptions import BotoCoreError

            try:
                return attr(*args, **kwargs)
            except BotoCoreError as exc:
                op = "".join(part.title() for part in name.split("_"))
                if type(exc).__name__ == "NoCredentialsError":
                    raise BuilderError(f"no AWS credentials for ECR ({op})", stage="publish",
                                       hint="configure credentials (AWS_PROFILE, env, OIDC role) "
                                            "before publishing to ECR") from None
                where = getattr(self._client.meta, "endpoint_url", "")
                if is_aws_timeout(exc):
                    raise BuilderError(f"ECR {op}: no answer from {where} within {self._bounds.describe()}",
                                       stage="publish",
                                       hint="check the network to ECR; raise LMI_BUILD_AWS_TIMEOUT_S or "
                                            "LMI_BUILD_AWS_ATTEMPTS for a slow link") from None
                raise BuilderError(f"ECR {op} failed: {str(exc).splitlines()[0][:300]}",
                                   stage="publish", hint="check the network to ECR and AWS_ENDPOINT_URL_ECR") from None

        return call


@dataclass
class Repository:
    name: str
    uri: str
    created: bool
    mutability: str


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


class EcrControl:
    def __init__(self, account: str, region: str, *, cache_dir: Path | None = None, client: Any = None):
        import boto3

        self.account = account
        self.region = region
        self.cache_dir = cache_dir
        # bounded: connect/read timeouts and a total number of attempts (builder.registry.deadlines),
        # and a transport failure of any call becomes a message naming the bound, not a traceback
        self.bounds = AwsBounds.from_env()
        self.client = _Bounded(client or boto3.client("ecr", region_name=region,
                                                      config=aws_config(self.bounds)), self.bounds)

    def _call(self, what: str, fn, **kw):
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return fn(**kw)
        except NoCredentialsError:
            raise BuilderError("no AWS credentials for ECR", stage="publish",
                               hint="configure credentials (AWS_PROFILE, env, OIDC role) "
                                    "before publishing to ECR") from None
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise BuilderError(f"ECR {what} failed: {err.get('Code')}: {err.get('Message')}",
                               stage="publish") from None
        except BotoCoreError as exc:
            raise BuilderError(f"ECR {what} failed: {exc}", stage="publish") from None

    # --- repository -------------------------------------------------------------------------
    def ensure_repository(self, name: str, lifecycle_policy: dict | None = None) -> Repository:
        from botocore.exceptions import ClientError

        created = False
        try:
            repo = self.client.describe_repositories(registryId=self.account,
                                                     repositoryNames=[name])["repositories"][0]
        except ClientError as exc:
            if _code(exc) != "RepositoryNotFoundException":
                err = exc.response.get("Error", {})
                raise BuilderError(f"ECR DescribeRepositories failed: {err.get('Code')}: "
                                   f"{err.get('Message')}", stage="publish") from None
            try:
                repo = self.client.create_repository(
                    registryId=self.account, repositoryName=name, imageTagMutability="IMMUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                    encryptionConfiguration={"encryptionType": "AES256"},
                    tags=[{"Key": "managed-by", "Value": "lmi-builder"}],
                )["repository"]
                created = True
                console.info(f"created ECR repository {repo['repositoryUri']} "
                             "(IMMUTABLE tags, scan on push, AES256)")
            except ClientError as exc2:
                if _code(exc2) != "RepositoryAlreadyExistsException":  # lost a race: fine
                    err = exc2.response.get("Error", {})
                    raise BuilderError(f"ECR CreateRepository {name!r} failed: {err.get('Code')}: "
                                       f"{err.get('Message')}", stage="publish") from None
                repo = self.client.describe_repositories(registryId=self.account,
                                                         repositoryNames=[name])["repositories"][0]
        if lifecycle_policy is not None:
            self._call("PutLifecyclePolicy", self.client.put_lifecycle_policy, registryId=self.account,
                       repositoryName=name, lifecyclePolicyText=json.dumps(lifecycle_policy))
        return Repository(name=name, uri=repo["repositoryUri"], created=created,
                          mutability=repo.get("imageTagMutability", "MUTABLE"))

    # --- auth token -------------------------------------------------------------------------
    def _token_key(self) -> str:
        endpoint = getattr(self.client.meta, "endpoint_url", "")
        return hashlib.sha256(f"{self.account}|{self.region}|{endpoint}".encode()).hexdigest()[:32]

    def _token_file(self, key: str) -> Path | None:
        if not self.cache_dir or os.environ.get("LMI_BUILD_ECR_TOKEN_CACHE") != "1":
            return None
        return self.cache_dir / "ecr-tokens" / f"{key}.json"

    def auth_config(self) -> dict[str, str]:
        """``{"username": "AWS", "password": <token>}`` for pushes and registry API calls."""
        key = self._token_key()
        now = time.time()
        hit = _TOKENS.get(key)
        if hit and hit[2] - TOKEN_MARGIN_S > now:
            return {"username": hit[0], "password": hit[1]}
        path = self._token_file(key)
        if path and path.exists():
            try:
                data = json.loads(path.read_text())
                if data["expires"] - TOKEN_MARGIN_S > now:
                    _TOKENS[key] = (data["username"], data["password"], data["expires"])
                    return {"username": data["username"], "password": data["password"]}
            except (OSError, ValueError, KeyError):
                pass
        resp = self._call("GetAuthorizationToken", self.client.get_authorization_token,
                          registryIds=[self.account])
        data = resp["authorizationData"][0]
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        expires_at = data.get("expiresAt")
        expires = expires_at.timestamp() if isinstance(expires_at, datetime) else now + 12 * 3600
        _TOKENS[key] = (user, password, expires)
        if path and expires - TOKEN_MARGIN_S > now:
            _write_private(path, {"username": user, "password": password, "expires": expires})
        return {"username": user, "password": password}

    # --- images -----------------------------------------------------------------------------
    def tag_digest(self, repository: str, tag: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            details = self.client.describe_images(registryId=self.account, repositoryName=repository,
                                                  imageIds=[{"imageTag": tag}])["imageDetails"]
        except ClientError as exc:
            if _code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return None
            err = exc.response.get("Error", {})
            raise BuilderError(f"ECR DescribeImages failed: {err.get('Code')}: {err.get('Message')}",
                               stage="publish") from None
        return details[0]["imageDigest"] if details else None

    def has_digest(self, repository: str, digest: str) -> list[str] | None:
        """Tags of the image with ``digest``, or None when ECR does not hold it."""
        from botocore.exceptions import ClientError

        try:
            details = self.client.describe_images(registryId=self.account, repositoryName=repository,
                                                  imageIds=[{"imageDigest": digest}])["imageDetails"]
        except ClientError as exc:
            if _code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return None
            raise
        return list(details[0].get("imageTags") or []) if details else None

    def retag(self, repository: str, digest: str, tag: str) -> None:
        """Add ``tag`` to an image already in ECR (no bytes move): BatchGetImage + PutImage."""
        from botocore.exceptions import ClientError

        got = self._call("BatchGetImage", self.client.batch_get_image, registryId=self.account,
                         repositoryName=repository, imageIds=[{"imageDigest": digest}],
                         acceptedMediaTypes=[
                             "application/vnd.docker.distribution.manifest.v2+json",
                             "application/vnd.oci.image.manifest.v1+json",
                             "application/vnd.oci.image.index.v1+json",
                             "application/vnd.docker.distribution.manifest.list.v2+json"])
        if not got.get("images"):
            raise BuilderError(f"ECR has no image {digest} in {repository}", stage="publish")
        image = got["images"][0]
        kw = {"imageManifestMediaType": image["imageManifestMediaType"]} \
            if image.get("imageManifestMediaType") else {}
        try:
            self.client.put_image(registryId=self.account, repositoryName=repository,
                                  imageManifest=image["imageManifest"], imageTag=tag, **kw)
        except ClientError as exc:
            # real ECR: ImageTagAlreadyExistsException; moto: ImageAlreadyExistsException (§6.3).
            # Re-putting the same manifest under the same tag is also ImageAlreadyExists: idempotent.
            code = _code(exc)
            if code == "ImageAlreadyExistsException" and self.tag_digest(repository, tag) == digest:
                return
            if code in ("ImageTagAlreadyExistsException", "ImageAlreadyExistsException"):
                raise ImmutableTagError(
                    f"ECR tag {repository}:{tag} already exists at another image and the repository's "
                    f"tags are immutable ({code})", stage="publish",
                    hint="publish under a new tag") from None
            err = exc.response.get("Error", {})
            raise BuilderError(f"ECR PutImage failed: {code}: {err.get('Message')}", stage="publish") from None


def _write_private(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
