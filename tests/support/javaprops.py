"""Parse properties files with the JDK's own java.util.Properties (tests/java/PropsDump.java)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "java" / "PropsDump.java"


def java_available() -> bool:
    return shutil.which("java") is not None


needs_java = pytest.mark.skipif(not java_available(), reason="no 'java' on PATH (JDK 11+ runs single-file sources)")


def java_load(*files: Path) -> list[dict[str, str]]:
    """One map per file, in order; a single JVM for all of them."""
    proc = subprocess.run(["java", str(SOURCE), *map(str, files)], capture_output=True, text=True, timeout=120,
                          check=False)
    if proc.returncode != 0:
        raise AssertionError(f"java failed: {proc.stderr}")
    return [json.loads(line) for line in proc.stdout.splitlines()]
