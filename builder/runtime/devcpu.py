"""The ``dev-cpu`` runtime image: real djl_python behind our DJL-contract front end, on the rootfs image.

Tag ``lmi-build/dev-cpu:<djl_python version>-<inputs digest 12>``, where the inputs are the rootfs
image id, the jar's sha256, every front-end file and the Dockerfile template. A second call with
nothing changed inspects one tag and returns: no debootstrap, no mvn, no docker build.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import jinja2
from pydantic import BaseModel

from builder import engine
from builder import labels as L
from builder.console import info, step
from builder.diagnostics import BuilderError
from builder.paths import images_dir
from builder.runtime import maven
from builder.runtime.rootfs import ensure_rootfs_image

STAGE = "runtime"
REPOSITORY = "lmi-build/dev-cpu"
TEMPLATE = "runtime.Dockerfile.j2"
MODEL_DIR = "/opt/ml/model"  # reference/lmi-runtime.md §13
PORT = 8080


class RuntimeImage(BaseModel):
    """A runtime image other stages build FROM (bake) or run (smoke, serve)."""

    ref: str  # repository:tag
    image_id: str
    djl_python_version: str
    built: bool  # False when the tag already existed
    inputs_digest: str = ""
    rootfs_ref: str = ""
    model_dir: str = MODEL_DIR
    port: int = PORT


def family_dir() -> Path:
    return images_dir() / "dev-cpu"


def frontend_files() -> dict[str, bytes]:
    """Front-end sources keyed by their path in the build context (``frontend/...``)."""
    root = family_dir() / "frontend"
    files = {}
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        files[f"frontend/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    if "frontend/lmi_dev_frontend/__main__.py" not in files:
        raise BuilderError(f"the dev-cpu front end is missing under {root}", stage=STAGE)
    return files


def render_runtime_dockerfile(folder: Path, rootfs_ref: str, djl_python_version: str) -> str:
    """``folder``'s runtime template (the dev-cpu runtime's, or its ``hf`` variant's) for a rootfs and djl_python."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.get_template(TEMPLATE).render(rootfs_ref=rootfs_ref, djl_python_version=djl_python_version)


def render_dockerfile(rootfs_ref: str, djl_python_version: str) -> str:
    return render_runtime_dockerfile(family_dir(), rootfs_ref, djl_python_version)


def inputs_digest(rootfs_image_id: str, jar_sha256: str, djl_python_version: str) -> str:
    h = hashlib.sha256()
    doc = {"rootfs": rootfs_image_id, "jar": jar_sha256, "djl_python": djl_python_version,
           "template": hashlib.sha256((family_dir() / TEMPLATE).read_bytes()).hexdigest(),
           "frontend": {k: hashlib.sha256(v).hexdigest() for k, v in frontend_files().items()}}
    h.update(json.dumps(doc, sort_keys=True).encode())
    return h.hexdigest()


def runtime_ref(djl_python_version: str, digest: str) -> str:
    return f"{REPOSITORY}:{djl_python_version}-{digest[:12]}"


def ensure_devcpu_runtime(cache_dir: str | os.PathLike | None = None, *, rebuild: bool = False,
                          client=None, runtime_base: str | None = None,
                          djl_python_version: str = maven.DJL_PYTHON_VERSION) -> RuntimeImage:
    """The dev-cpu runtime image, built only when its inputs changed (or ``rebuild``).

    Makes what it needs on the way: the rootfs image (``ensure_rootfs_image``) and the djl_python
    jar (``maven.fetch_jar``), each cached on its own. ``rebuild`` rebuilds only this image.
    """
    client = client or engine.docker_client(STAGE)
    rootfs = ensure_rootfs_image(client, cache_dir=cache_dir, runtime_base=runtime_base)
    jar = maven.cached_jar(maven.coordinate(djl_python_version), cache_dir) or \
        maven.fetch_jar(maven.coordinate(djl_python_version), cache_dir)
    digest = inputs_digest(rootfs.image_id, jar.sha256, djl_python_version)
    ref = runtime_ref(djl_python_version, digest)
    common = {"ref": ref, "djl_python_version": djl_python_version, "inputs_digest": digest,
              "rootfs_ref": rootfs.ref}
    ident, built = engine.ensure_image(
        client, ref, lock="dev-cpu", cache_dir=cache_dir, rebuild=rebuild,
        make=lambda: build_runtime_image(client, ref, rootfs.ref, jar, digest, djl_python_version))
    if built:
        info(f"dev-cpu runtime {ref} ({ident[:19]})")
    return RuntimeImage(image_id=ident, built=built, **common)


def build_runtime_image(client, ref: str, rootfs_ref: str, jar: maven.MavenJar, digest: str,
                        djl_python_version: str, *, nocache: bool = False, dockerfile: str | None = None,
                        extra_labels: dict[str, str] | None = None, what: str = "dev-cpu runtime") -> str:
    """docker build of a runtime image: djl_python from the jar + our front end on ``rootfs_ref``
    (no cache check; ``ensure_devcpu_runtime`` / ``hf.ensure_hf_runtime`` decide when). ``dockerfile``
    replaces the default template's rendering for a variant."""
    step(f"building {what} {ref} (djl_python {djl_python_version}, FROM {rootfs_ref})")
    files = frontend_files()
    files["Dockerfile"] = (dockerfile or render_dockerfile(rootfs_ref, djl_python_version)).encode()
    with tempfile.TemporaryDirectory(prefix="djl-python-") as tmp:
        root = maven.extract_djl_python(jar.path, Path(tmp))
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[f"python/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    image_labels = {L.MANAGED: "true", L.ROLE: "runtime", L.DEV_RUNTIME: "true",
                    L.DJL_PYTHON_VERSION: djl_python_version, L.INPUTS_DIGEST: digest,
                    L.LMI_FAMILY: "dev-cpu", f"{L.NS}.rootfs.ref": rootfs_ref,
                    f"{L.NS}.djl-python.jar-sha256": jar.sha256, **(extra_labels or {})}
    return engine.build(client, engine.tar_context(files), what=ref, stage=STAGE, tag=ref, labels=image_labels,
                        nocache=nocache, network_mode=None).image_id
