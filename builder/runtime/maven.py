"""DJL's Python engine jar (``ai.djl.python:python``) from Maven Central, cached by coordinate.

The jar carries LMI's whole Python layer, ``djl_python`` (reference/lmi-runtime.md §19). It is
resolved with the ordinary Maven client (``mvn dependency:copy``), its SHA-1 checked against the
``.sha1`` Maven Central publishes (kept by Maven in ``~/.m2``), and stored under
``<cache>/maven/<group path>/<artifact>/<version>/`` with its sha256 beside it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel

from builder.diagnostics import BuilderError
from builder.paths import cache_dir as _cache_dir

DJL_PYTHON_GROUP = "ai.djl.python"
DJL_PYTHON_ARTIFACT = "python"
# The only release of the engine jar that resolves from Maven Central here (reference §19).
DJL_PYTHON_VERSION = "0.34.0"

STAGE = "runtime"


class MavenJar(BaseModel):
    """A jar in the cache."""

    coordinate: str  # group:artifact:version
    path: Path
    sha1: str
    sha256: str
    fetched: bool  # False when it came from the cache


def coordinate(version: str = DJL_PYTHON_VERSION) -> str:
    return f"{DJL_PYTHON_GROUP}:{DJL_PYTHON_ARTIFACT}:{version}"


def jar_cache_path(coord: str, cache_dir: str | os.PathLike | None = None) -> Path:
    group, artifact, version = _split(coord)
    root = _cache_dir(cache_dir) / "maven" / Path(*group.split(".")) / artifact / version
    return root / f"{artifact}-{version}.jar"


def cached_jar(coord: str | None = None, cache_dir: str | os.PathLike | None = None) -> MavenJar | None:
    """The cached jar, or None when it has not been fetched (never touches the network)."""
    coord = coord or coordinate()
    path = jar_cache_path(coord, cache_dir)
    sha_file = path.with_name(path.name + ".sha256")
    sha1_file = path.with_name(path.name + ".sha1")
    if not (path.is_file() and sha_file.is_file() and sha1_file.is_file()):
        return None
    return MavenJar(coordinate=coord, path=path, sha1=sha1_file.read_text().strip(),
                    sha256=sha_file.read_text().strip(), fetched=False)


def fetch_jar(coord: str | None = None, cache_dir: str | os.PathLike | None = None, *,
              refresh: bool = False, mvn: str = "mvn") -> MavenJar:
    """Resolve ``coord`` with Maven into the cache (once), verifying Maven Central's SHA-1."""
    coord = coord or coordinate()
    path = jar_cache_path(coord, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.parent / ".lock")):
        if not refresh:
            hit = cached_jar(coord, cache_dir)
            if hit is not None:
                return hit
        mvn_path = shutil.which(mvn)
        if mvn_path is None:
            raise BuilderError(f"Maven ('{mvn}') is not on PATH; it is needed to fetch {coord}",
                               stage=STAGE, hint="install Maven (Debian: apt-get install maven) and Java 17")
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".fetch-") as tmp:
            _mvn_copy(mvn_path, coord, Path(tmp))
            group, artifact, version = _split(coord)
            got = Path(tmp) / f"{artifact}-{version}.jar"
            if not got.is_file():
                raise BuilderError(f"Maven reported success but wrote no {got.name}", stage=STAGE)
            sha1 = _digest(got, "sha1")
            expected = _published_sha1(group, artifact, version)
            if expected is not None and expected != sha1:
                raise BuilderError(
                    f"{coord}: SHA-1 {sha1} does not match Maven Central's {expected}", stage=STAGE,
                    hint=f"remove ~/.m2/repository/{group.replace('.', '/')}/{artifact}/{version} and retry")
            _check_zip(got, coord)
            sha256 = _digest(got, "sha256")
            # Atomic: the .sha256 marker is written last, so a half-written entry is never a hit.
            os.replace(got, path)
            _write_atomic(path.with_name(path.name + ".sha1"), sha1 + "\n")
            _write_atomic(path.with_name(path.name + ".sha256"), sha256 + "\n")
    return MavenJar(coordinate=coord, path=path, sha1=sha1, sha256=sha256, fetched=True)


def extract_djl_python(jar: Path, dest: Path) -> Path:
    """Unzip the Python parts of the engine jar (``djl_python/``, ``djl_python_engine.py``) into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(jar) as zf:
        for name in zf.namelist():
            if (name.startswith("djl_python/") or name == "djl_python_engine.py") and not name.endswith("/"):
                target = (dest / name).resolve()
                if not target.is_relative_to(dest.resolve()):  # zip-slip guard
                    raise BuilderError(f"{jar.name}: entry {name!r} escapes the extraction folder", stage=STAGE)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    return dest


def _mvn_copy(mvn_path: str, coord: str, out: Path) -> None:
    cmd = [mvn_path, "-q", "-B", "dependency:copy", f"-Dartifact={coord}", f"-DoutputDirectory={out}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise BuilderError(f"mvn timed out after {exc.timeout:.0f} s fetching {coord}", stage=STAGE,
                           hint="check that Maven Central (repo.maven.apache.org) is reachable") from None
    if proc.returncode != 0:
        text = (proc.stdout + proc.stderr).strip()
        tail = "\n".join(text.splitlines()[-8:])
        offline = any(s in text for s in ("UnknownHost", "Could not transfer", "Connection refused",
                                          "Network is unreachable", "offline mode"))
        hint = ("Maven Central is not reachable from this machine (offline?); fetch on a connected machine "
                "and copy the cache folder, or set LMI_BUILD_CACHE to one" if offline
                else "run the same mvn command by hand to see the full output")
        raise BuilderError(f"mvn could not fetch {coord} (exit {proc.returncode}):\n{tail}",
                           stage=STAGE, hint=hint)


def _published_sha1(group: str, artifact: str, version: str) -> str | None:
    """Maven Central's ``.sha1`` as Maven stored it in the local repository (None if absent)."""
    repo = Path(os.environ.get("LMI_BUILD_M2_REPO", Path.home() / ".m2" / "repository"))
    sha_file = repo / Path(*group.split(".")) / artifact / version / f"{artifact}-{version}.jar.sha1"
    if not sha_file.is_file():
        return None
    text = sha_file.read_text().strip()
    return text.split()[0].lower() if text else None


def _check_zip(jar: Path, coord: str) -> None:
    try:
        with zipfile.ZipFile(jar) as zf:
            if "djl_python/__init__.py" not in zf.namelist() and coord.startswith(DJL_PYTHON_GROUP):
                raise BuilderError(f"{coord}: the jar has no djl_python/ package", stage=STAGE)
    except zipfile.BadZipFile:
        raise BuilderError(f"{coord}: {jar.name} is not a valid jar (zip)", stage=STAGE) from None


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _split(coord: str) -> tuple[str, str, str]:
    parts = coord.split(":")
    if len(parts) != 3 or not all(parts):
        raise BuilderError(f"not a Maven coordinate (group:artifact:version): {coord!r}", stage=STAGE)
    return parts[0], parts[1], parts[2]
