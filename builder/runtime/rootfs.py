"""The base root filesystem image: Debian bookworm with python3 and numpy, made without pulling.

Nothing can be pulled here, so the base is made from Debian's own packages:
``debootstrap --variant=minbase --include=python3,python3-numpy bookworm DIR MIRROR`` and then
``tar -C DIR -c . | docker import`` (DESIGN.md, "Testing on a machine without a GPU"). The image is
tagged by a digest of everything that decides its content, so it is made once per engine and reused.
On a machine that can pull, ``runtime_base`` (a digest-pinned ``debian:bookworm-slim@sha256:…``) gives
the same layout with apt-get inside a build instead.

It is also the generic base image the test suite builds FROM (tests/support/docker_fixtures.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from pydantic import BaseModel

from builder import engine
from builder import labels as L
from builder.console import info, step
from builder.diagnostics import BuilderError
from builder.paths import cache_dir as _cache_dir

STAGE = "runtime"
REPOSITORY = "lmi-build/bookworm-rootfs"
SUITE = "bookworm"
VARIANT = "minbase"
PACKAGES = ("python3", "python3-numpy")
MIRROR = "http://deb.debian.org/debian"
# Bump when the way the image is made changes (excludes, changes, layout).
RECIPE_VERSION = "1"
# /proc, /sys, /dev contents are the engine's business; apt's caches are dead weight.
_EXCLUDES = ("./proc/*", "./sys/*", "./dev/*", "./var/cache/apt/archives/*.deb",
             "./var/lib/apt/lists/*", "./debootstrap")


class RootfsImage(BaseModel):
    ref: str  # repository:tag
    image_id: str
    inputs_digest: str  # full sha256 hex of the inputs
    built: bool  # False when the tag already existed


def inputs_digest(*, runtime_base: str | None = None, suite: str = SUITE, variant: str = VARIANT,
                  packages: tuple[str, ...] = PACKAGES, mirror: str = MIRROR) -> str:
    """sha256 over everything that decides the rootfs content."""
    doc = {"recipe": RECIPE_VERSION, "suite": suite, "variant": variant, "packages": sorted(packages),
           "mirror": mirror, "runtime_base": runtime_base}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def rootfs_ref(digest: str) -> str:
    return f"{REPOSITORY}:{digest[:12]}"


def ensure_rootfs_image(client=None, *, cache_dir: str | os.PathLike | None = None, rebuild: bool = False,
                        runtime_base: str | None = None, mirror: str = MIRROR) -> RootfsImage:
    """The rootfs image for this engine, made when its tag is missing (or ``rebuild``).

    ``runtime_base``: a digest-pinned ``debian:bookworm-slim@sha256:…`` to build FROM with apt-get
    instead of running debootstrap (for machines that can pull). Safe to call concurrently: a
    file lock in the cache serialises makers, and the second caller finds the tag.
    """
    if runtime_base is not None and "@sha256:" not in runtime_base:
        raise BuilderError(f"--runtime-base {runtime_base!r} is not pinned by digest", stage=STAGE,
                           hint="use debian:bookworm-slim@sha256:<digest> so the base cannot move")
    client = client or engine.docker_client(STAGE)
    digest = inputs_digest(runtime_base=runtime_base, mirror=mirror)
    ref = rootfs_ref(digest)
    image_labels = {L.MANAGED: "true", L.ROLE: "rootfs", L.INPUTS_DIGEST: digest,
                    f"{L.NS}.rootfs.suite": SUITE,
                    f"{L.NS}.rootfs.packages": ",".join(PACKAGES)}

    def make() -> str:
        if runtime_base:
            return _build_from_base(client, runtime_base, ref, image_labels)
        return _debootstrap_import(client, ref, image_labels, _cache_dir(cache_dir), mirror)

    ident, built = engine.ensure_image(client, ref, lock="rootfs", cache_dir=cache_dir, rebuild=rebuild, make=make)
    return RootfsImage(ref=ref, image_id=ident, inputs_digest=digest, built=built)


def _debootstrap_import(client, ref: str, image_labels: dict[str, str], cache: Path, mirror: str) -> str:
    exe = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists()
                                          else None)
    if exe is None:
        raise BuilderError("debootstrap is not installed; it makes the base image without pulling",
                           stage=STAGE, hint="apt-get install debootstrap, or pass --runtime-base "
                                             "debian:bookworm-slim@sha256:<digest> on a machine that can pull")
    if os.geteuid() != 0:
        raise BuilderError("debootstrap needs root to make the base rootfs", stage=STAGE,
                           hint="run once as root (the image is then reused), or use --runtime-base")
    work = cache / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="rootfs-", dir=work))
    try:
        step(f"debootstrap {SUITE} ({VARIANT}, {','.join(PACKAGES)}) from {mirror} (takes a few minutes)")
        cmd = [exe, f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}", SUITE, str(tmp / "root"),
               mirror]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
            raise BuilderError(f"debootstrap failed (exit {proc.returncode}):\n{tail}", stage=STAGE,
                               hint=f"check that {mirror} is reachable")
        return _import(client, tmp / "root", ref, image_labels)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _import(client, root: Path, ref: str, image_labels: dict[str, str]) -> str:
    """``tar -C root -c . | docker import`` through the SDK, with labels and a sane default config."""
    step(f"docker import -> {ref}")
    tar_cmd = ["tar", "--numeric-owner", "-C", str(root), "-c"]
    for pattern in _EXCLUDES:
        tar_cmd.append(f"--exclude={pattern}")
    tar_cmd.append(".")
    changes = [f"LABEL {k}={json.dumps(v)}" for k, v in sorted(image_labels.items())]
    changes += ['ENV LANG=C.UTF-8', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                'CMD ["/bin/bash"]']
    proc = subprocess.Popen(tar_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    failed: BuilderError | None = None
    try:
        ident = engine.import_image(client, _chunks(proc.stdout), ref, changes=changes, stage=STAGE)
    except BuilderError as exc:
        failed = exc  # a failed tar explains a failed import better: checked first
    finally:
        proc.stdout.close()
        rc = proc.wait()
        reader.join(5)
    if rc != 0:
        raise BuilderError(f"tar of the rootfs failed (exit {rc}): {b''.join(err).decode(errors='replace')}",
                           stage=STAGE)
    if failed is not None:
        raise failed
    info(f"rootfs image {ref} ({ident[:19]})")
    return ident


def _chunks(stream, size: int = 1 << 20):
    while True:
        data = stream.read(size)
        if not data:
            return
        yield data


def _build_from_base(client, base: str, ref: str, image_labels: dict[str, str]) -> str:
    """Same layout from a pulled, digest-pinned Debian image (apt-get inside a build)."""
    step(f"building {ref} FROM {base} with apt-get")
    dockerfile = (
        f"FROM {base}\n"
        "ENV LANG=C.UTF-8\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends "
        + " ".join(PACKAGES) + " && rm -rf /var/lib/apt/lists/*\n"
        'CMD ["/bin/bash"]\n'
    )
    context = engine.tar_context({"Dockerfile": dockerfile.encode()})
    return engine.build(client, context, what=ref, stage=STAGE, tag=ref, labels=image_labels,
                        network_mode="host").image_id
