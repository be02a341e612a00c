"""The examples' committed tiny models are exactly what ``lmi-build example-model`` writes.

The weights are committed (21 KB and 93 KB, see .gitignore) so that a fresh clone builds the examples
with the console script alone; this keeps the committed bytes from drifting away from the generator
(a changed seed, shape, numpy stream or file layout fails here, not at someone's smoke test).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.cli import main
from builder.paths import REPO_DIR

EXAMPLES = REPO_DIR / "recipes" / "examples"
CASES = {"quickstart": ("quickstart/model", []), "hf-cpu-tiny-llama": ("hf-cpu-tiny-llama/model", ["--llama"])}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_regenerating_gives_the_committed_bytes(name: str, tmp_path: Path, capsys) -> None:
    folder, flags = CASES[name]
    out = tmp_path / "model"
    assert main(["example-model", *flags, str(out)]) == 0
    capsys.readouterr()
    committed, regenerated = _files(EXAMPLES / folder), _files(out)
    assert "model.safetensors" in committed, f"{folder}/model.safetensors is not in the checkout"
    assert sorted(committed) == sorted(regenerated)
    for fname, data in regenerated.items():
        assert committed[fname] == data, f"{folder}/{fname} differs from what `lmi-build example-model` writes"


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_weights_are_tracked_not_ignored(name: str) -> None:
    if not (REPO_DIR / ".git").exists():
        pytest.skip("not a git checkout")
    rel = f"recipes/examples/{CASES[name][0]}/model.safetensors"
    ignored = subprocess.run(["git", "-C", str(REPO_DIR), "check-ignore", "-q", rel], check=False)
    assert ignored.returncode == 1, f"{rel} is git-ignored: a fresh clone would have no weights"
