"""An AOT build called as a user calls it (no ``--cache-dir``) on a host without the target's accelerator:
the default cache is used and the build stops with the compile refusal (one ``error:`` line, exit 1), not a
``TypeError`` from ``Path(None)`` in builder/compile/run.py (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import main
from builder.compile import run as compile_run
from builder.compile.models import HostAccelerators
from tests.support.model_fixtures import make_tiny_model

EXAMPLES = Path(__file__).resolve().parents[2] / "recipes" / "examples"


def _local_copy(example: str, folder: Path) -> Path:
    """The example recipe with its Hub model swapped for a tiny local folder (no network here), and
    compile enabled (the neuronx example compiles at start-up)."""
    make_tiny_model(folder / "model")
    lines = []
    for line in (EXAMPLES / example).read_text().splitlines():
        if line.startswith("  id: "):
            line = "  path: model"
        elif line.startswith("  revision: "):
            continue
        lines.append(line)
    if not any(line.startswith("compile:") for line in lines):
        lines += ["compile:", "  enabled: true"]
    recipe = folder / "recipe.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    return recipe


@pytest.mark.parametrize("example", ["trtllm-aot-llama3-8b-g6.yaml", "neuronx-llama3-8b-inf2.yaml"])
def test_aot_build_without_cache_dir_refuses_cleanly(example, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LMI_BUILD_CACHE", str(cache))
    # a host with no GPU and no Neuron device, whatever machine runs the test
    monkeypatch.setattr(compile_run, "detect_host", lambda: HostAccelerators(note="no devices (test)"))
    recipe = _local_copy(example, tmp_path / "r")

    rc = main(["build", str(recipe)])

    err = capsys.readouterr().err
    assert rc == 1, err
    assert "Traceback" not in err and "TypeError" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert errors[0].startswith("error: compile: compile did not run:"), err
    # the compile stage used the default cache, not a folder named "None" or the working directory
    assert (cache / "compile").is_dir()
    assert not Path("None").exists()
