"""Hostile and careless input to the recipe loader, ``import`` and the CLI's output (issue 15).

Every case has the same property: ``lmi-build`` exits 1 or 2 with a located one-line message, within
a time bound (pytest-timeout) and, for the subprocess cases, a memory bound; no traceback; nothing a
terminal would act on echoed raw; and for ``import``, the value LMI would read from the input (Java's
``Properties``, docker's ``--env-file`` rules) is exactly the value the written recipe renders.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from builder.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"name": "ok", "model": {"id": "org/m", "revision": "a" * 40, "trust_remote_code": False},
        "container": {"family": "lmi", "version": "lmi-27.0.0"}, "target": {"instance_type": "ml.g5.xlarge"},
        "serving": {"engine": "Python", "option": {"rolling_batch": "vllm", "tensor_parallel_degree": 1}}}

pytestmark = pytest.mark.timeout(30)

# What a terminal acts on: raw in stderr it could clear the screen or forge a line.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
LOCATED = re.compile(r"^(\S.*?:\d+:\d+: error: \[[a-z0-9-]+\] |\S.*: error: |error: )")


def check_refused(rc: int, err: str, *, expect: str | None = None) -> None:
    """The common property: exit 1 or 2, a located one-line error, no traceback, no raw control."""
    assert rc in (1, 2), err
    assert "Traceback" not in err, err
    assert not RAW_CONTROL.search(err), ascii(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert any(LOCATED.match(line) for line in lines), err
    if expect is not None:
        assert expect in err, err


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


def write(path: Path, content: str | bytes | dict) -> Path:
    if isinstance(content, dict):
        content = yaml.safe_dump(content, sort_keys=False)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def run_limited(argv: list[str], *, cwd: Path, timeout: float = 60, mem_gib: float = 2.0) -> subprocess.CompletedProcess:
    """``python -m builder`` under an address-space limit: an unbounded allocation fails fast."""
    def limit() -> None:
        cap = int(mem_gib * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "builder", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit, env=env, check=False)


# --- YAML bombs, deep and large documents ---------------------------------------------------------

def alias_bomb(levels: int, width: int) -> str:
    lines = [f'a0: &a0 [{", ".join(["x"] * width)}]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def mapping_bomb(levels: int, width: int) -> str:
    lines = ["b0: &b0 {" + ", ".join(f"k{j}: v" for j in range(width)) + "}"]
    for i in range(1, levels + 1):
        lines.append(f"b{i}: &b{i} {{" + ", ".join(f"k{j}: *b{i - 1}" for j in range(width)) + "}")
    return "\n".join(lines) + "\n"


BOMBS = {
    "alias-8x9": alias_bomb(8, 9),  # the 1.1 KB file of the issue: 9**8 nodes when expanded
    "alias-20x2": alias_bomb(20, 2),
    "alias-in-mapping": mapping_bomb(8, 9),
    "recursive-alias": "a: &x [1, *x]\n",
    "deep-flow": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-block": "".join(" " * (2 * i) + f"k{i}:\n" for i in range(200)) + " " * 400 + "v: 1\n",
    "many-keys": "".join(f"k{i}: {i}\n" for i in range(40_000)),
    "long-value": "name: " + "x" * (1 << 20) + "\n",
    "many-documents": "---\na: 1\n" * 1000,
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_yaml_bombs_refused_fast_and_located(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "r.yaml", BOMBS[case])
    for command in (["validate"], ["render", "-o", str(tmp_path / "out")]):
        rc, err = cli([*command, str(path)], capsys)
        check_refused(rc, err)
        assert err.splitlines()[0].startswith("r.yaml:") or f"{path}:" in err.splitlines()[0] or "r.yaml:" in err


def test_alias_bomb_has_its_own_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = cli(["validate", str(write(tmp_path / "r.yaml", BOMBS["alias-8x9"]))], capsys)
    check_refused(rc, err, expect="[yaml-too-many-nodes]")
    assert "alias" in err


def test_alias_bomb_in_a_memory_limited_process(tmp_path: Path) -> None:
    # before the node budget this took ~100 s and ~14 GB, or ended in MemoryError under a limit
    path = write(tmp_path / "bomb.yaml", BOMBS["alias-8x9"])
    for command in (["validate", "bomb.yaml"], ["render", "bomb.yaml", "-o", "out"]):
        proc = run_limited(command, cwd=tmp_path, timeout=30)
        check_refused(proc.returncode, proc.stderr, expect="[yaml-too-many-nodes]")
    assert path.exists() and not (tmp_path / "out").exists()


def test_a_few_aliases_still_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = yaml.safe_dump(GOOD, sort_keys=False) + "env: &e {A: '1'}\nsmoke: {env: *e}\n"
    rc, err = cli(["validate", str(write(tmp_path / "r.yaml", text))], capsys)
    assert rc == 0, err


# --- special files as the recipe ------------------------------------------------------------------

def special_files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "missing.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    return {"fifo": fifo, "directory": tmp_path / "dir.yaml", "dangling-symlink": tmp_path / "dangling.yaml",
            "dev-zero": Path("/dev/zero"), "symlink-to-dev-zero": tmp_path / "zero.yaml",
            "dev-null": Path("/dev/null")}


SPECIAL = ["fifo", "directory", "dangling-symlink", "dev-zero", "symlink-to-dev-zero", "dev-null"]


@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("command", ["validate", "render"])
def test_special_file_as_recipe(kind: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = special_files(tmp_path)[kind]
    extra = ["-o", str(tmp_path / "out")] if command == "render" else []
    rc, err = cli([command, str(path), *extra], capsys)
    check_refused(rc, err)
    assert not (tmp_path / "out").exists()


# --- markup and terminal escapes in paths and keys ------------------------------------------------

HOSTILE_NAMES = {
    "rich-close-tag": "x[/]y",
    "rich-style": "[bold red]fake[/]",
    "clear-screen": "a\x1b[2Jb",
    "carriage-return": "a\rb",
    "fake-summary": "a\n1 recipe(s): 1 valid",
    "bidi-override": "a\u202etxt.lmy",
    "c1-csi": "a\x9b2Jb",
    "line-separator": "a\u2028b",
    "bell": "a\x07b",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
@pytest.mark.parametrize("command", ["validate", "render", "build"])
def test_hostile_path_is_shown_escaped(case: str, command: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / HOSTILE_NAMES[case]
    folder.mkdir(parents=True)  # "x[/]y" is x[ / ]y
    data = {**GOOD, "model": {"path": "missing-weights"}}
    path = write(folder / "r.yaml", data)
    extra = ["-o", str(tmp_path / "out")] if command == "render" else []
    rc, err = cli([command, str(path), *extra], capsys)
    check_refused(rc, err)
    assert not any(line.startswith("1 recipe(s): 1 valid") for line in err.splitlines()), err


@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
def test_hostile_key_is_shown_escaped(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = HOSTILE_NAMES[case]
    text = yaml.safe_dump({**GOOD, key: 1}, sort_keys=False, allow_unicode=True)
    rc, err = cli(["validate", str(write(tmp_path / "r.yaml", text))], capsys)
    check_refused(rc, err)


def test_console_escapes_what_a_terminal_acts_on(capsys: pytest.CaptureFixture[str]) -> None:
    from builder import console

    console.step("validate x[/]y \x1b[2J")
    console.info("a\rb\x85c\u2028d")
    console.warn("[bold]w\x1b]0;title\x07")
    console.error("e\x9b31m")
    err = capsys.readouterr().err
    assert not RAW_CONTROL.search(err), ascii(err)
    for shown in ("x[/]y", "\\x1b[2J", "a\\x0db", "\\x85c", "\\u2028d", "[bold]w", "\\x1b]0;title\\x07", "e\\x9b31m"):
        assert shown in err, ascii(err)


def test_argparse_errors_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", "r.yaml", "--\x1b[2J"])  # "unrecognized arguments" echoes argv as is
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert not RAW_CONTROL.search(err) and "--\\x1b[2J" in err
