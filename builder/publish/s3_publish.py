"""S3 artifacts for the stock LMI image: upload the layout, then say how to deploy it.

The answer (``S3Publication``, JSON on stdout of ``lmi-build publish --s3`` and in the build record)
names the stock image for the recipe's release and region, the SageMaker ``ModelDataSource`` for the
prefix, the environment to pass, and ``ContainerStartupHealthCheckTimeoutInSeconds``.

Health-check timeout: SageMaker copies the uncompressed prefix to /opt/ml/model *before* it starts
the container (that copy has its own limit, ``ModelDataDownloadTimeoutInSeconds``), and the health
check clock starts with the container. Inside it, the JVM front end starts, the Python workers start
and import their engine (CUDA/Neuron initialisation), and only then does LMI load the model, for up
to ``option.model_loading_timeout``; /ping answers healthy after that. The upstream docs require the
health-check timeout to be at least model_loading_timeout (reference/lmi-runtime.md §17, item 6).
The margin, ``STARTUP_MARGIN_S`` = 120 s, is for the start before loading; it is twice the smoke
stage's readiness margin (60 s, which runs without SageMaker's agent) and a chosen figure, not one
measured on a GPU instance here. SageMaker accepts 60-3600 s: a larger sum is capped at 3600 with a
warning (the model would then have to load faster than the recipe allows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from builder import console
from builder.diagnostics import BuilderError
from builder.publish.s3_artifacts import UploadReport, UploadSettings, log_report, upload_layout
from builder.publish.s3_layout import LayoutFile

STAGE = "publish"
STARTUP_MARGIN_S = 120
SAGEMAKER_HEALTH_CHECK_MIN_S = 60
SAGEMAKER_HEALTH_CHECK_MAX_S = 3600
DEFAULT_LOADING_TIMEOUT_S = 1200  # the LMI/TRT-LLM images' MODEL_LOADING_TIMEOUT (reference §12)


class StockImage(BaseModel):
    reference: str | None  # repo:tag of the stock image (None: no stock image, dev-cpu)
    pinned: str | None = None  # repo@sha256:... when the digest is known
    digest_status: str  # "pinned by container.image" | "not resolved: ..." | "not applicable: ..."


class S3Publication(BaseModel):
    target: str = "s3"
    uri: str
    image: StockImage
    ModelDataSource: dict[str, Any]
    ContainerStartupHealthCheckTimeoutInSeconds: int
    health_check_timeout_basis: str
    Environment: dict[str, str] = Field(default_factory=dict)
    upload: UploadReport
    smoke: dict[str, Any] | None = None


def stock_image(container: dict[str, Any], *, stand_in: str | None = None) -> StockImage:
    """From the resolved recipe's ``container`` block (``Resolved.to_json()['container']``)."""
    ref = container.get("base_image")
    if container.get("family") == "dev-cpu" and not ref:
        return StockImage(reference=None, digest_status="not applicable: dev-cpu has no stock LMI image; the "
                          f"stand-in is the locally built dev-cpu runtime{f' {stand_in}' if stand_in else ''}, "
                          "which is in no registry")
    if not ref:
        return StockImage(reference=None, digest_status=f"not resolved: the catalog has no DLC account for region "
                          f"{container.get('region')}")
    if "@sha256:" in ref:
        return StockImage(reference=ref, pinned=ref, digest_status="pinned by container.image")
    host = ref.split("/", 1)[0]
    return StockImage(reference=ref, digest_status=f"not resolved: the tag's digest was not looked up in {host} "
                      "(it needs credentials for that registry); pin it with container.image: REPO@sha256:... "
                      "or read it with `aws ecr describe-images`")


def health_check_timeout(properties: dict[str, Any]) -> tuple[int, str]:
    raw = str(properties.get("option.model_loading_timeout", ""))
    loading, said = (int(raw), "option.model_loading_timeout") if raw.isdigit() else \
        (DEFAULT_LOADING_TIMEOUT_S, "the image's MODEL_LOADING_TIMEOUT default")
    wanted = loading + STARTUP_MARGIN_S
    value = min(max(wanted, SAGEMAKER_HEALTH_CHECK_MIN_S), SAGEMAKER_HEALTH_CHECK_MAX_S)
    basis = f"{said} {loading} s + {STARTUP_MARGIN_S} s for the JVM and Python workers to start before loading"
    if value != wanted:
        basis += f" = {wanted} s, clamped to SageMaker's {SAGEMAKER_HEALTH_CHECK_MIN_S}-{SAGEMAKER_HEALTH_CHECK_MAX_S} s"
        if wanted > SAGEMAKER_HEALTH_CHECK_MAX_S:
            console.warn(f"{said} {loading} s + {STARTUP_MARGIN_S} s is over SageMaker's "
                         f"{SAGEMAKER_HEALTH_CHECK_MAX_S} s health-check limit: the endpoint is failed if loading "
                         "takes that long")
    return value, basis


def model_data_source(uri: str) -> dict[str, Any]:
    return {"S3DataSource": {"S3Uri": uri, "S3DataType": "S3Prefix", "CompressionType": "None"}}


def publish_layout(files: list[LayoutFile], uri: str, resolved_json: dict[str, Any], *, s3: Any = None,
                   prune: bool = False, settings: UploadSettings | None = None,
                   stand_in: str | None = None) -> S3Publication:
    """Upload ``files`` under ``uri`` and describe the deployment (``resolved_json``: ``Resolved.to_json()``,
    or the image's ``dev.lmi-builder.recipe`` label, which is the same document)."""
    console.step(f"publish {len(files)} files to {uri} (uncompressed, for the stock LMI image)")
    report = upload_layout(files, uri, s3=s3, prune=prune, settings=settings)
    log_report(report)
    props = (resolved_json.get("serving") or {}).get("properties") or {}
    timeout, basis = health_check_timeout(props)
    env = ((resolved_json.get("recipe") or {}).get("env")) or {}
    return S3Publication(uri=report.uri, image=stock_image(resolved_json.get("container") or {}, stand_in=stand_in),
                         ModelDataSource=model_data_source(report.uri),
                         ContainerStartupHealthCheckTimeoutInSeconds=timeout, health_check_timeout_basis=basis,
                         Environment=dict(env), upload=report)


def publish_build(resolved, uri: str, *, model_dir: Path | None, compiled_dir: Path | None,
                  extra_files: dict[str, Path], known_sha256: dict[str, str] | None = None, prune: bool = False,
                  stand_in: str | None = None, s3: Any = None) -> S3Publication:
    """Pipeline entry: the build's own model/compiled/handler files and its rendered properties."""
    from builder.publish.s3_layout import layout_for_build

    files = layout_for_build(resolved, model_dir=model_dir, compiled_dir=compiled_dir, extra_files=extra_files,
                             known_sha256=known_sha256)
    return publish_layout(files, uri, resolved.to_json(), s3=s3, prune=prune, stand_in=stand_in)


def s3_uri_for(recipe: Any, explicit: str | None, push: bool) -> str | None:
    """``--s3 URI`` wins; the recipe's ``publish.s3.uri`` counts with ``--push`` (as ecr/registry do)."""
    if explicit:
        return explicit
    target = getattr(getattr(recipe, "publish", None), "s3", None)
    return target.uri if push and target is not None else None


def check_uri(uri: str, what: str = "--s3") -> str:
    from builder.diagnostics import UsageError
    from builder.publish.s3_artifacts import parse_uri

    try:
        bucket, prefix = parse_uri(uri)
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None
    return f"s3://{bucket}/{prefix}"


def require_model(recipe: Any) -> None:
    if not recipe.model.bake:
        raise BuilderError("publish.s3 uploads the model files, and model.bake: false means they are not fetched",
                           stage=STAGE, hint="set model.bake: true (the default); the prefix's serving.properties "
                                             "then has no option.model_id and LMI loads /opt/ml/model")


def publish_stage(resolved, uri: str, *, artifacts: Any, compiled: Any, extra_files: dict[str, Path],
                  stand_in: str | None, smoke: str, prune: bool = False, cache_dir: Any = None,
                  log_dir: Path | None = None, smoke_status: str = "passed",
                  skip_smoke: bool = False) -> dict[str, Any]:
    """The pipeline's S3 publish: upload, then (dev-cpu) smoke the prefix as SageMaker would mount it.
    Returns the record entry (``S3Publication`` as JSON). The same gate as an image publish: only
    after this build's smoke stage passed, unless ``skip_smoke``."""
    require_model(resolved.recipe)
    if smoke_status != "passed":
        if not skip_smoke:
            raise BuilderError(f"S3 artifacts are published only after a passed smoke test (this build's smoke "
                               f"stage: {smoke_status})", stage=STAGE,
                               hint="run the build where the target's accelerator is, or pass --skip-smoke "
                                    "explicitly")
        console.warn(f"publishing S3 artifacts without a passed smoke test (smoke {smoke_status}): --skip-smoke")
    compiled_dir = compiled.dir if compiled is not None and compiled.dir else None
    model_dir = compiled_dir or (artifacts.dir if artifacts is not None else None)
    known = {f.name: f.sha256 for f in artifacts.files} if artifacts is not None and not compiled_dir else None
    publication = publish_build(resolved, uri, model_dir=model_dir, compiled_dir=None, extra_files=extra_files,
                                known_sha256=known, prune=prune, stand_in=stand_in)
    publication.smoke = _smoke_shape(publication.uri, resolved, stand_in, smoke, log_dir)
    return publication.model_dump(mode="json")


def _smoke_shape(uri: str, resolved, stand_in: str | None, smoke: str, log_dir: Path | None) -> dict[str, Any]:
    if smoke == "never":
        return {"status": "skipped", "reason": "--smoke never"}
    if resolved.release.family != "dev-cpu" or not stand_in:
        return {"status": "skipped", "reason": f"the stock {resolved.release.family} image does not run on this "
                "host's CPU; the S3 shape is smoke-tested with the dev-cpu stand-in only"}
    from builder.publish.s3_smoke import smoke_prefix

    result = smoke_prefix(uri, stand_in, resolved.to_json(), log_dir=log_dir)
    if result.status != "passed":
        raise BuilderError(f"the S3 prefix {uri} failed its smoke test: {result.reason}", stage=STAGE,
                           hint="the objects are uploaded; fix the recipe and publish again (only changed "
                                "objects are sent)")
    return result.model_dump(mode="json")


def publish_image_to_s3(image: str, uri: str, *, prune: bool = False, skip_smoke: bool = False,
                        cache_dir: str | None = None, docker_client: Any = None, s3: Any = None,
                        work_dir: Path | None = None) -> S3Publication:
    """``lmi-build publish IMAGE --s3 URI``: the image's /opt/ml/model (the same layout the build
    writes) copied out of a created, never started, container and uploaded. The image must have
    passed its smoke test, as for a registry publish (``--skip-smoke`` to override)."""
    import json
    import shutil
    import tarfile
    import tempfile

    import docker.errors

    from builder import labels as L
    from builder.publish import gate
    from builder.publish.s3_layout import layout_from_dir

    if docker_client is None:
        from builder.engine import docker_client as make

        docker_client = make(STAGE)
    try:
        attrs = docker_client.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        raise BuilderError(f"no image {image!r} on the local Docker engine", stage=STAGE,
                           hint="build it first: lmi-build build RECIPE") from None
    image_labels = (attrs.get("Config") or {}).get("Labels") or {}
    raw = image_labels.get(L.RECIPE_JSON)
    if not raw:
        raise BuilderError(f"image {image!r} has no {L.RECIPE_JSON} label: not built by lmi-build", stage=STAGE,
                           hint="publish --s3 needs an image built by lmi-build, or use build --s3")
    resolved_json = json.loads(raw)
    # the artifacts are not the dev runtime, so only the smoke half of the gate applies
    gate.check(attrs["Id"], {}, skip_smoke=skip_smoke, allow_dev_runtime=True, cache_dir=cache_dir)
    tmp = Path(tempfile.mkdtemp(prefix="lmi-s3-layout-", dir=work_dir))
    container = None
    try:
        container = docker_client.api.create_container(attrs["Id"], command=["true"],
                                                       labels={L.MANAGED: "true", L.ROLE: "publish-s3"})
        stream, _stat = docker_client.api.get_archive(container["Id"], "/opt/ml/model")
        reader = _ChunkReader(stream)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            if hasattr(tarfile, "data_filter"):  # 3.10.12+/3.11.4+: no links out, no device files
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)
        files = layout_from_dir(tmp / "model")
        return publish_layout(files, uri, resolved_json, s3=s3, prune=prune)
    except docker.errors.APIError as exc:
        raise BuilderError(f"cannot copy /opt/ml/model out of {image!r}: {exc.explanation or exc}",
                           stage=STAGE) from None
    finally:
        if container is not None:
            try:
                docker_client.api.remove_container(container["Id"], force=True)
            except docker.errors.APIError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


class _ChunkReader:
    """A file-like ``read`` over the engine's chunk iterator (tarfile's stream mode); linear in the
    bytes read (an offset into the current chunk, no re-slicing of a growing buffer)."""

    def __init__(self, chunks):
        self._it = iter(chunks)
        self._chunk = b""
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        parts = []
        want = n
        while want != 0:
            if self._pos >= len(self._chunk):
                try:
                    self._chunk, self._pos = next(self._it), 0
                except StopIteration:
                    break
                continue
            end = len(self._chunk) if want < 0 else min(len(self._chunk), self._pos + want)
            parts.append(self._chunk[self._pos:end])
            if want > 0:
                want -= end - self._pos
            self._pos = end
        return b"".join(parts)
