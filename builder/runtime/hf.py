"""The ``dev-cpu`` runtime's opt-in ``hf`` variant: the HF-accelerate handler (``djl_python.huggingface``) on CPU.

``djl_python.huggingface`` needs torch, transformers, peft, pillow and requests
(reference/lmi-runtime.md §19). torch from PyPI drags in its CUDA libraries (5.6 GB venv, §19) and
bookworm's ``python3-torch`` 1.13.1 is too old for current transformers (§19), so this variant is
a Debian **trixie** rootfs with Debian's CPU-only ``python3-torch`` 2.6 (plus numpy, safetensors,
pillow, requests, pydantic v2, ... from Debian), and the pure-Python packages Debian lacks
(transformers, tokenizers, huggingface_hub, peft, accelerate) downloaded as wheels from PyPI on the
host (``pip download``: the host trusts the proxy CA, containers do not) and unpacked into
``/usr/local/lib/python3.X/dist-packages`` before ``docker import``. See docs/hf-cpu.md for sizes.

Images: ``lmi-build/trixie-hf-rootfs:<inputs digest 12>`` (rootfs) and
``lmi-build/dev-cpu:<djl_python>-hf-<inputs digest 12>`` (runtime: djl_python + our front end, the same
files as dev-cpu). Both are cached by input digest like the dev-cpu runtime; the default dev-cpu
runtime's inputs and behaviour do not change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from pydantic import BaseModel

from builder import engine
from builder import labels as L
from builder.console import info, step
from builder.diagnostics import BuilderError
from builder.paths import cache_dir as _cache_dir
from builder.paths import images_dir
from builder.runtime import devcpu, maven, rootfs

STAGE = "runtime"
VARIANT = "hf"
ROOTFS_REPOSITORY = "lmi-build/trixie-hf-rootfs"
SUITE = "trixie"
PYTHON = "3.13"  # trixie's python3; the wheels are chosen for it
# Debian packages (debootstrap resolves their Depends). python3-torch 2.6 is CPU-only in Debian.
PACKAGES = ("python3", "python3-torch", "python3-numpy", "python3-safetensors", "python3-pil",
            "python3-requests", "python3-pydantic", "python3-yaml", "python3-tqdm", "python3-psutil",
            "python3-regex", "python3-filelock", "python3-packaging", "python3-fsspec",
            "python3-typing-extensions")
# What Debian trixie lacks, pinned. transformers 4.57 is the last 4.x (djl_python 0.34.0 predates 5.x);
# huggingface_hub <1.0 and tokenizers 0.22 are what it requires. hf-xet (hub downloads) is left out:
# the image serves a baked model with HF_HUB_OFFLINE=1.
WHEELS = ("transformers==4.57.6", "tokenizers==0.22.2", "huggingface_hub==0.36.2", "peft==0.17.1",
          "accelerate==1.10.1")
# Bump when the way the rootfs is made changes.
RECIPE_VERSION = "1"
TEMPLATE = devcpu.TEMPLATE  # the same name in the variant's own folder


class HfRootfs(BaseModel):
    ref: str
    image_id: str
    inputs_digest: str
    built: bool


def family_dir() -> Path:
    return images_dir() / "dev-cpu-hf"


def rootfs_inputs_digest(mirror: str = rootfs.MIRROR) -> str:
    doc = {"recipe": RECIPE_VERSION, "suite": SUITE, "variant": rootfs.VARIANT, "packages": sorted(PACKAGES),
           "wheels": sorted(WHEELS), "python": PYTHON, "mirror": mirror}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def runtime_inputs_digest(rootfs_image_id: str, jar_sha256: str, djl_python_version: str) -> str:
    doc = {"variant": VARIANT, "rootfs": rootfs_image_id, "jar": jar_sha256, "djl_python": djl_python_version,
           "template": hashlib.sha256((family_dir() / TEMPLATE).read_bytes()).hexdigest(),
           "frontend": {k: hashlib.sha256(v).hexdigest() for k, v in devcpu.frontend_files().items()}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def runtime_ref(djl_python_version: str, digest: str) -> str:
    return f"{devcpu.REPOSITORY}:{djl_python_version}-{VARIANT}-{digest[:12]}"


def render_dockerfile(rootfs_ref: str, djl_python_version: str) -> str:
    return devcpu.render_runtime_dockerfile(family_dir(), rootfs_ref, djl_python_version)


# ------------------------------------------------------------------------------------------- wheels
def download_wheels(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """The pinned wheels for CPython ``PYTHON`` on manylinux x86_64, via ``pip download`` (cached)."""
    dest = _cache_dir(cache_dir) / "hf-wheels" / hashlib.sha256(json.dumps(sorted(WHEELS)).encode()).hexdigest()[:12]
    marker = dest / "complete.json"
    if marker.exists():
        return [dest / name for name in json.loads(marker.read_text())["files"]]
    dest.mkdir(parents=True, exist_ok=True)
    step(f"pip download {' '.join(WHEELS)} (CPython {PYTHON}, manylinux x86_64, no deps)")
    abi = "cp" + PYTHON.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", PYTHON, "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
           "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
           "--platform", "manylinux_2_28_x86_64", "--dest", str(dest), *WHEELS]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise BuilderError(f"pip download of the HF wheels failed (exit {proc.returncode}):\n{tail}", stage=STAGE,
                           hint="check that PyPI is reachable (pip config, proxy CA)")
    files = sorted(p.name for p in dest.glob("*.whl"))
    if len(files) != len(WHEELS):
        raise BuilderError(f"expected {len(WHEELS)} wheels in {dest}, found {files}", stage=STAGE)
    tmp = marker.with_name(".complete.json.tmp")
    tmp.write_text(json.dumps({"files": files, "pins": list(WHEELS)}, indent=2))
    os.replace(tmp, marker)
    return [dest / name for name in files]


def unpack_wheel(wheel: Path, site_packages: Path) -> None:
    """Install a wheel by unzipping it (what pip does for purelib/platlib; no scripts are needed here)."""
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.infolist():
            name = member.filename
            parts = name.split("/")
            if parts[0].endswith(".data"):
                # <dist>.data/{purelib,platlib}/... belongs in site-packages; scripts/headers are not used
                if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
                    target = site_packages.joinpath(*parts[2:])
                else:
                    continue
            else:
                target = site_packages / name
            if name.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            mode = (member.external_attr >> 16) & 0o777
            os.chmod(target, mode or 0o644)
    # pip's record of the installer, so importlib.metadata sees a normal installation
    for info_dir in site_packages.glob("*.dist-info"):
        installer = info_dir / "INSTALLER"
        if not installer.exists():
            installer.write_text("lmi-builder\n")


# ------------------------------------------------------------------------------------------- rootfs
def ensure_hf_rootfs(client=None, *, cache_dir: str | os.PathLike | None = None, rebuild: bool = False,
                     mirror: str = rootfs.MIRROR) -> HfRootfs:
    """The trixie + torch + transformers rootfs image, made when its tag is missing (or ``rebuild``)."""
    client = client or engine.docker_client(STAGE)
    digest = rootfs_inputs_digest(mirror)
    ref = f"{ROOTFS_REPOSITORY}:{digest[:12]}"
    image_labels = {L.MANAGED: "true", L.ROLE: "rootfs", L.INPUTS_DIGEST: digest,
                    f"{L.NS}.rootfs.suite": SUITE, f"{L.NS}.rootfs.packages": ",".join(PACKAGES),
                    f"{L.NS}.rootfs.wheels": ",".join(WHEELS)}
    ident, built = engine.ensure_image(
        client, ref, lock="hf-rootfs", cache_dir=cache_dir, rebuild=rebuild,
        make=lambda: _debootstrap_with_wheels(client, ref, image_labels, _cache_dir(cache_dir), mirror,
                                              download_wheels(cache_dir)))
    return HfRootfs(ref=ref, image_id=ident, inputs_digest=digest, built=built)


def _debootstrap_with_wheels(client, ref: str, image_labels: dict[str, str], cache: Path, mirror: str,
                             wheels: list[Path]) -> str:
    exe = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists()
                                          else None)
    if exe is None:
        raise BuilderError("debootstrap is not installed; the hf variant's rootfs is made with it",
                           stage=STAGE, hint="apt-get install debootstrap")
    if os.geteuid() != 0:
        raise BuilderError("debootstrap needs root to make the hf variant's rootfs", stage=STAGE,
                           hint="run once as root (the image is then reused)")
    if not (Path("/usr/share/debootstrap/scripts") / SUITE).exists():
        raise BuilderError(f"this debootstrap does not know the {SUITE} suite", stage=STAGE,
                           hint="install a newer debootstrap (bookworm's 1.0.128+nmu2+deb12u1 or later knows trixie)")
    work = cache / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="hf-rootfs-", dir=work))
    try:
        root = tmp / "root"
        step(f"debootstrap {SUITE} ({rootfs.VARIANT}, {len(PACKAGES)} packages incl. python3-torch) from {mirror} "
             "(several minutes, about 1.3 GB)")
        cmd = [exe, f"--variant={rootfs.VARIANT}", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
            raise BuilderError(f"debootstrap {SUITE} failed (exit {proc.returncode}):\n{tail}", stage=STAGE,
                               hint=f"check that {mirror} is reachable")
        site = root / "usr" / "local" / "lib" / f"python{PYTHON}" / "dist-packages"
        if not (root / "usr" / "lib" / f"python{PYTHON}").is_dir():
            raise BuilderError(f"the {SUITE} rootfs has no Python {PYTHON}; the wheels were chosen for it",
                               stage=STAGE, hint="update builder/runtime/hf.py PYTHON and WHEELS")
        site.mkdir(parents=True, exist_ok=True)
        step(f"unpacking {len(wheels)} wheels into /{site.relative_to(root)}")
        for wheel in wheels:
            unpack_wheel(wheel, site)
        return rootfs._import(client, root, ref, image_labels)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------ runtime
def ensure_hf_runtime(cache_dir: str | os.PathLike | None = None, *, rebuild: bool = False,
                      rebuild_rootfs: bool = False, client=None,
                      djl_python_version: str = maven.DJL_PYTHON_VERSION) -> devcpu.RuntimeImage:
    """The dev-cpu ``hf`` runtime image, built only when its inputs changed (or ``rebuild``)."""
    client = client or engine.docker_client(STAGE)
    base = ensure_hf_rootfs(client, cache_dir=cache_dir, rebuild=rebuild_rootfs)
    jar = maven.cached_jar(maven.coordinate(djl_python_version), cache_dir) or \
        maven.fetch_jar(maven.coordinate(djl_python_version), cache_dir)
    digest = runtime_inputs_digest(base.image_id, jar.sha256, djl_python_version)
    ref = runtime_ref(djl_python_version, digest)
    common = {"ref": ref, "djl_python_version": djl_python_version, "inputs_digest": digest, "rootfs_ref": base.ref}
    ident, built = engine.ensure_image(
        client, ref, lock="dev-cpu-hf", cache_dir=cache_dir, rebuild=rebuild or rebuild_rootfs,
        make=lambda: devcpu.build_runtime_image(
            client, ref, base.ref, jar, digest, djl_python_version, nocache=rebuild,
            dockerfile=render_dockerfile(base.ref, djl_python_version),
            extra_labels={f"{L.NS}.runtime.variant": VARIANT}, what="dev-cpu hf runtime"))
    if built:
        info(f"dev-cpu hf runtime {ref} ({ident[:19]})")
    return devcpu.RuntimeImage(image_id=ident, built=built, **common)
