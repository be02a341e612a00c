"""``publish_image``: gate, tag, push, verify, per target. Nothing counts as published unless the
registry (or ECR's DescribeImages) confirms every tag points at the pushed digest."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import SecretStr

from builder import console, credentials, engine, labels
from builder.diagnostics import BuilderError
from builder.publish import gate, tags
from builder.publish.ecr import EcrControl, registry_host
from builder.publish.hints import deploy_hints
from builder.publish.models import PublishOptions, PublishResult, PublishTarget, TargetResult, split_registry
from builder.publish.registry_api import RegistryClient

OCI_REVISION = "org.opencontainers.image.revision"


@dataclass
class LocalImage:
    ref: str
    id: str
    labels: dict[str, str]
    env: list[str]
    repo_digests: list[str]
    obj: object


def load_image(client, ref: str) -> LocalImage:
    import docker

    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        raise BuilderError(f"no local image {ref!r}", stage="publish",
                           hint="give a local image reference or id (see `docker images`)") from None
    except docker.errors.APIError as exc:
        raise BuilderError(f"cannot inspect image {ref!r}: {exc.explanation}", stage="publish") from None
    cfg = image.attrs.get("Config") or {}
    return LocalImage(ref=ref, id=image.id, labels=dict(image.labels or {}), env=list(cfg.get("Env") or []),
                      repo_digests=list(image.attrs.get("RepoDigests") or []), obj=image)


def image_digest(image_labels: dict[str, str]) -> str | None:
    """The image inputs digest (builder.assembly.identity) of a model image we built, or None (an image of
    another builder, or one of ours from before tags were content-addressed)."""
    digest = image_labels.get(labels.INPUTS_DIGEST) or ""
    # an artifacts/runtime image's inputs digest is a cache key (bare hex), and a model image made before
    # content-addressed tags inherited its artifacts image's: only one with the inputs JSON beside it counts
    if image_labels.get(labels.ROLE, "model") != "model" or not image_labels.get(labels.INPUTS_JSON) \
            or not digest.startswith("sha256:"):
        return None
    return digest


def tag_variables(img: LocalImage, git_sha: str | None) -> dict[str, str | None]:
    recipe_hash = img.labels.get(labels.RECIPE_HASH) or None
    digest = (image_digest(img.labels) or "").removeprefix("sha256:") or None
    sha = git_sha or img.labels.get(OCI_REVISION) or None
    return {
        "name": tags.sanitize(img.labels[labels.RECIPE_NAME]) if img.labels.get(labels.RECIPE_NAME) else None,
        "image_digest": digest,
        "image_digest12": digest[:12] if digest else None,
        "recipe_hash": recipe_hash,
        "recipe_hash12": recipe_hash[:12] if recipe_hash else None,
        "git_sha": sha[:7] if sha else None,
        "lmi_version": img.labels.get(labels.LMI_VERSION) or None,
    }


def publish_image(image_ref: str, targets: list[PublishTarget], options: PublishOptions) -> PublishResult:
    if not targets:
        raise BuilderError("no publish target", stage="publish",
                           hint="give --registry HOST[:PORT]/REPO or --ecr-account/--ecr-region/--ecr-repository")
    client = engine.docker_client("publish")
    img = load_image(client, image_ref)
    smoke, gate_skipped = gate.check(img.id, img.labels, skip_smoke=options.skip_smoke,
                                     allow_dev_runtime=options.allow_dev_runtime, cache_dir=options.cache_dir)
    variables = tag_variables(img, options.git_sha)
    recipe_name = img.labels.get(labels.RECIPE_NAME)
    recipe_hash = img.labels.get(labels.RECIPE_HASH)
    digest = image_digest(img.labels)
    include_default = options.default_tag and bool(digest)
    tag_list = tags.tags_for(recipe_name or "image", digest or "", options.tags, variables,
                             include_default=include_default)
    if not tag_list:
        raise BuilderError("no tag to publish: the image has no inputs digest label "
                           f"({labels.INPUTS_DIGEST}) and no --tag was given", stage="publish",
                           hint="pass --tag TEMPLATE (e.g. --tag 1.0.0), or rebuild the image with this lmi-build")
    result = PublishResult(image_ref=image_ref, image_id=img.id, recipe_name=recipe_name,
                           recipe_hash=recipe_hash, lmi_version=variables["lmi_version"], smoke=smoke,
                           smoke_gate_skipped=gate_skipped,
                           dev_runtime=img.labels.get(labels.DEV_RUNTIME) == "true")
    for target in targets:
        console.step(f"publish {img.id[:19]} -> {target.describe()} ({', '.join(tag_list)})")
        tr = _publish_one(client, img, target, tag_list, options)
        result.targets.append(tr)
        console.info(f"  published and verified: {tr.pinned}")
    return result


def _publish_one(client, img: LocalImage, target: PublishTarget, tag_list: list[str],
                 options: PublishOptions) -> TargetResult:
    ecr = None
    ecr_repo = None
    if target.ecr:
        ecr = EcrControl(target.ecr.account, target.ecr.region,
                         cache_dir=_cache(options.cache_dir))
        ecr_repo = ecr.ensure_repository(target.ecr.repository, target.ecr.lifecycle_policy)
        auth = ecr.auth_config()
        override = options.ecr_registry_host or os.environ.get("LMI_BUILD_ECR_REGISTRY_HOST") or None
        host = override or registry_host(target.ecr.account, target.ecr.region)
        repo_path = target.ecr.repository
        creds = credentials.Credentials(username=auth["username"], password=SecretStr(auth["password"]),
                                        source="ecr")
        immutable = ecr_repo.mutability.startswith("IMMUTABLE")
        bytes_in_ecr = override is None
    else:
        assert target.registry is not None
        host, repo_path = split_registry(target.registry)
        creds = credentials.resolve(host, options.username, options.password, options.docker_config)
        auth = creds.auth_config() if creds else None
        immutable = False
        bytes_in_ecr = False
    full_repo = f"{host}/{repo_path}"
    api = RegistryClient(host, creds)

    def remote_digest(tag: str) -> str | None:
        if ecr is not None:
            d = ecr.tag_digest(repo_path, tag)
            if d or bytes_in_ecr:
                return d
        return api.manifest_digest(repo_path, tag)

    known = _local_digests(img.repo_digests, full_repo)
    to_push: list[str] = []
    skipped: list[str] = []
    for tag in tag_list:
        remote = remote_digest(tag)
        if remote is None:
            to_push.append(tag)
        elif remote in known or _is_this_image(api, repo_path, remote, img.id):
            known.add(remote)  # the local name (and its RepoDigest) is gone after a push: the config says
            skipped.append(tag)
            console.info(f"  {full_repo}:{tag} already at {remote}: skipped")
        elif options.force and not immutable:
            console.warn(f"{full_repo}:{tag} points at {remote}; moving it (--force)")
            to_push.append(tag)
        else:
            ours = ", ".join(sorted(known)) or f"not yet pushed here (local image {img.id})"
            why = ("the repository's tags are IMMUTABLE" if immutable
                   else "refusing to move a tag silently")
            raise BuilderError(
                f"tag {full_repo}:{tag} already points at {remote}, but this image is {ours}; {why}",
                stage="publish",
                hint="publish under another tag" + ("" if immutable else ", or pass --force to move it"))

    digest = next(iter(known)) if (skipped and not to_push and len(known) == 1) else None
    attempts = engine_retries = 0
    pushed: list[str] = []
    for tag in to_push:
        if digest and bytes_in_ecr and ecr is not None:
            ecr.retag(repo_path, digest, tag)  # no bytes move for extra ECR tags
            pushed.append(tag)
            continue
        with engine.pushed_name(client, img.id, full_repo, tag):  # no local registry name is left afterwards
            outcome = engine.push_tag(client, full_repo, tag, auth, attempts=options.push_attempts,
                               backoff_s=options.retry_backoff_s, size_bytes=_image_size(img))
            attempts += outcome.attempts
            engine_retries += outcome.engine_retries
            got = outcome.digest or _digest_after_push(client, img.id, full_repo) or \
                api.manifest_digest(repo_path, tag)
        if not got:
            raise BuilderError(f"push of {full_repo}:{tag} reported no digest", stage="publish")
        if digest and got != digest:
            raise BuilderError(f"{full_repo}:{tag} was pushed as {got}, but the other tags of this image "
                               f"are at {digest}", stage="publish")
        digest = got
        pushed.append(tag)
    if digest is None:  # everything skipped but the local image has several digests here
        digest = remote_digest(skipped[0])
    assert digest is not None

    # verify: every tag must point at the digest, as the registry (or ECR) itself says
    verified_by = "ecr:DescribeImages" if bytes_in_ecr else f"registry HEAD {host}"
    for tag in pushed + skipped:
        remote = remote_digest(tag)
        if remote != digest:
            raise BuilderError(f"verification failed: {full_repo}:{tag} points at {remote}, expected "
                               f"{digest}; not recorded as published", stage="publish")
    if bytes_in_ecr and ecr is not None and ecr.has_digest(repo_path, digest) is None:
        raise BuilderError(f"verification failed: ECR does not list {digest} in {repo_path}", stage="publish")
    return TargetResult(
        target=target.describe(), repository=full_repo, digest=digest, pinned=f"{full_repo}@{digest}",
        tags_pushed=pushed, tags_skipped=skipped, verified=True, verified_by=verified_by,
        engine_retries=engine_retries, push_attempts=attempts,
        ecr_repository_uri=ecr_repo.uri if ecr_repo else None,
        ecr_repository_created=ecr_repo.created if ecr_repo else None,
        deploy=deploy_hints(img.labels, img.env))


def _cache(explicit: str | None):
    from builder.paths import cache_dir

    return cache_dir(explicit)


def _local_digests(repo_digests: list[str], full_repo: str) -> set[str]:
    return {d.split("@", 1)[1] for d in repo_digests if d.split("@", 1)[0] == full_repo}


def _is_this_image(api, repo_path: str, remote: str, image_id: str) -> bool:
    """Whether the manifest at ``remote`` is this local image (its config digest is the image id)."""
    import json

    try:
        body, _, _ = api.get_manifest(repo_path, remote)
        return (json.loads(body).get("config") or {}).get("digest") == image_id
    except (BuilderError, ValueError, OSError, AttributeError):
        return False


def _image_size(img: LocalImage) -> int:
    """Bytes the push may have to move (the image's size: the push deadline scales with it)."""
    attrs = getattr(img.obj, "attrs", None) or {}
    try:
        return max(0, int(attrs.get("Size") or 0))
    except (TypeError, ValueError):
        return 0


def _digest_after_push(client, image_id: str, full_repo: str) -> str | None:
    image = client.images.get(image_id)
    found = _local_digests(list(image.attrs.get("RepoDigests") or []), full_repo)
    return next(iter(found)) if len(found) == 1 else None
