"""Third-party image checks: ``crane validate --remote`` (go-containerregistry, built once) and a
containerd pull + unpack with ``ctr``.

``crane`` is built from the Go module proxy with the Go toolchain
(``GOBIN=DIR go install github.com/google/go-containerregistry/cmd/crane@v0.22.1``) into
``~/.cache/lmi-build-tests/bin/crane-v0.22.1`` (``LMI_TEST_CRANE=PATH`` uses a binary you have), so a
run pays for the build once per machine. Without Go, or when the build fails, the tests that need it
skip and say why. ``crane validate`` reads every blob, checks each layer's digest and size against
the manifest and each uncompressed layer's sha256 against the config's ``rootfs.diff_ids``; an
uncompressed layer fails there ("gzip: invalid header"), as the OCI images we used to make did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CRANE_VERSION = "v0.22.1"
CRANE_MODULE = f"github.com/google/go-containerregistry/cmd/crane@{CRANE_VERSION}"
BIN_DIR = Path.home() / ".cache" / "lmi-build-tests" / "bin"
GO_CANDIDATES = ("/usr/local/go/bin/go",)


def _go() -> str | None:
    return shutil.which("go") or next((g for g in GO_CANDIDATES if os.access(g, os.X_OK)), None)


def build_crane() -> Path:
    """The crane binary (built if missing); raises RuntimeError with the reason when it cannot be."""
    explicit = os.environ.get("LMI_TEST_CRANE")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RuntimeError(f"LMI_TEST_CRANE={explicit} is not an executable")
        return Path(explicit)
    target = BIN_DIR / f"crane-{CRANE_VERSION}"
    if os.access(target, os.X_OK):
        return target
    go = _go()
    if go is None:
        raise RuntimeError(f"no Go toolchain (go on PATH or {GO_CANDIDATES[0]}) to build crane {CRANE_VERSION}")
    from filelock import FileLock

    BIN_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(BIN_DIR / ".crane.lock")):  # parallel sessions build it once
        if os.access(target, os.X_OK):
            return target
        with tempfile.TemporaryDirectory(dir=BIN_DIR, prefix=".gobin-") as gobin:
            proc = subprocess.run([go, "install", CRANE_MODULE], env={**os.environ, "GOBIN": gobin,
                                  "CGO_ENABLED": "0"}, capture_output=True, text=True, timeout=900, check=False)
            built = Path(gobin) / "crane"
            if proc.returncode != 0 or not built.exists():
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"go install {CRANE_MODULE} failed (exit {proc.returncode}): {tail[0]}")
            os.replace(built, target)  # atomic: never a half-written binary under the final name
    return target


@dataclass
class Crane:
    path: Path

    def validate(self, ref: str) -> subprocess.CompletedProcess:
        """``crane validate --remote REF`` (plain HTTP allowed: the test registries are on 127.0.0.1)."""
        return subprocess.run([str(self.path), "validate", "--insecure", "--remote", ref],
                              capture_output=True, text=True, timeout=600, check=False)

    def assert_valid(self, ref: str) -> None:
        proc = self.validate(ref)
        assert proc.returncode == 0, f"crane validate {ref}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"

    def manifest(self, ref: str) -> str:
        proc = subprocess.run([str(self.path), "manifest", "--insecure", ref], capture_output=True, text=True,
                              timeout=120, check=True)
        return proc.stdout


@pytest.fixture(scope="session")
def crane() -> Crane:
    try:
        return Crane(build_crane())
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"crane validate unavailable: {exc}")


# --- containerd: a second client that pulls and unpacks (ctr, the engine's own containerd) ----------

CONTAINERD_SOCKETS = ("/run/containerd/containerd.sock", "/var/run/docker/containerd/containerd.sock")


@dataclass
class Containerd:
    """``ctr`` against a running containerd, in a namespace of this test's own (Docker's is ``moby``)."""

    ctr: str
    address: str
    namespace: str

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([self.ctr, "--address", self.address, "-n", self.namespace, *args],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def pull(self, ref: str) -> subprocess.CompletedProcess:
        """Fetch and unpack (containerd's unpacker checks each layer's uncompressed digest against the
        config's diff_ids); plain HTTP for the 127.0.0.1 test registries."""
        return self.run("images", "pull", "--plain-http", ref)

    def snapshots(self) -> list[str]:
        return [line.split()[0] for line in self.run("snapshots", "ls").stdout.splitlines()[1:] if line.strip()]


def _containerd_address(ctr: str) -> str | None:
    for sock in CONTAINERD_SOCKETS:
        if not os.path.exists(sock):
            continue
        try:
            proc = subprocess.run([ctr, "--address", sock, "version"], capture_output=True, timeout=10, check=False)
        except subprocess.TimeoutExpired:
            continue
        if proc.returncode == 0:
            return sock
    return None


@pytest.fixture
def containerd() -> Iterator[Containerd]:
    import uuid

    ctr = shutil.which("ctr")
    if ctr is None:
        pytest.skip("containerd check unavailable: no ctr binary (Debian package containerd)")
    address = _containerd_address(ctr)
    if address is None:
        pytest.skip(f"containerd check unavailable: no containerd answers on {', '.join(CONTAINERD_SOCKETS)}")
    client = Containerd(ctr, address, f"lmi-builder-test-{uuid.uuid4().hex[:8]}")
    yield client
    # only this namespace, which only this test used: its images (content and snapshots with them), then it
    for ref in client.run("images", "ls", "-q").stdout.split():
        client.run("images", "rm", "--sync", ref)
    client.run("namespaces", "rm", client.namespace, timeout=60)
