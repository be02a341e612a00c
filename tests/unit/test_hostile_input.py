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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.cli import main
from tests.support.javaprops import java_load, needs_java

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


# --- import: env files as docker reads them, properties files as Java reads them ------------------

SHA = "a" * 40
BASE_PROPS = f"option.model_id=org/m\noption.revision={SHA}\noption.rolling_batch=vllm\n"
# Every character str.splitlines() breaks on, the other C0/C1 controls, and Unicode's separators.
BREAKERS = ["\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\x1b", "\t", "\x7f",
            "\x9b", "\ufeff", "\u202e"]


def import_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str], *, props: bytes | None = None,
                  env: bytes | None = None, version: str = "lmi-27.0.0") -> tuple[int, str, dict | None]:
    argv = ["import"]
    if props is not None:
        argv.append(str(write(tmp_path / "serving.properties", props)))
    if env is not None:
        argv += ["--env-file", str(write(tmp_path / "docker.env", env))]
    out = tmp_path / "r.yaml"
    argv += ["--family", "lmi", "--version", version, "--instance-type", "ml.g5.xlarge", "-o", str(out), "--force"]
    rc, err = cli(argv, capsys)
    return rc, err, (yaml.safe_load(out.read_text(encoding="utf-8")) if rc == 0 else None)


def rendered_properties(recipe: Path) -> str:
    from builder.lmi.render import render_texts
    from builder.lmi.resolve import resolve
    from builder.recipe import load_recipe

    loaded = load_recipe(recipe)
    assert loaded.recipe is not None, loaded.diagnostics
    return render_texts(resolve(loaded.recipe))["serving.properties"]


@pytest.mark.parametrize("ch", BREAKERS, ids=[f"U+{ord(c):04X}" for c in BREAKERS])
def test_env_value_with_a_line_breaking_char_is_one_variable(ch: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # docker splits on \n only: OPTION_MY_KEY=a<ch>OPTION_EVIL=1 is one variable, never two
    env = f"HF_MODEL_ID=org/m\nHF_REVISION={SHA}\nOPTION_ROLLING_BATCH=vllm\nOPTION_MY_KEY=a{ch}OPTION_EVIL=1\n"
    rc, err, data = import_recipe(tmp_path, capsys, env=env.encode("utf-8"))
    if rc == 0:
        assert data is not None
        option = data["serving"]["option"]
        assert "evil" not in option and option["my_key"] == f"a{ch}OPTION_EVIL=1"
    else:  # refused (a control char in a value): located at the env file's line, not the recipe
        check_refused(rc, err)
        assert "docker.env:4:" in err, err
        assert "evil" not in err.lower().replace("option_evil=1", "")


NAME_CHARS = [c for c in BREAKERS if c != "\x00"] + ["\n"]  # a file name holds anything but NUL and '/'


@pytest.mark.parametrize("ch", NAME_CHARS, ids=[f"U+{ord(c):04X}" for c in NAME_CHARS])
def test_import_header_comment_cannot_add_a_key(ch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / f"a{ch}name: evil"
    folder.mkdir()
    rc, err, data = import_recipe(folder, capsys, props=BASE_PROPS.encode())
    assert rc == 0, err
    assert data is not None and "name" in data and data["name"] != "evil" and "evil" not in data


def test_env_file_rules_are_dockers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # what `docker create --env-file` (docker 28.2.2) stored for this very file, Config.Env
    raw = ("\ufeffHF_MODEL_ID=org/m\n"  # the BOM is dropped; the first variable is kept
           f"HF_REVISION={SHA}\r\n"  # \r\n ends a line
           "OPTION_ROLLING_BATCH=vllm\n"
           "  \tOPTION_TRAIL=trail  \n"  # leading white space trimmed, trailing kept
           "\fOPTION_FF=j\n"
           "OPTION_QUOTED=\"quoted\"\n"  # no unquoting
           "OPTION_CR=d\rE=e\n"  # a lone \r is part of the value
           "OPTION_NUM=007\n"
           "OPTION_BOOL=TRUE\n"
           "OPTION_SPACED=42  \n"
           "# OPTION_COMMENT=1\n").encode()
    rc, err, data = import_recipe(tmp_path, capsys, env=raw)
    if rc != 0:  # OPTION_CR holds a \r: the recipe refuses it, located at line 7 of the env file
        check_refused(rc, err)
        assert "docker.env:7:1" in err, err
        raw = raw.replace(b"OPTION_CR=d\rE=e\n", b"")
        rc, err, data = import_recipe(tmp_path, capsys, env=raw)
    assert rc == 0, err
    assert data is not None
    assert data["model"]["id"] == "org/m" and data["model"]["revision"] == SHA
    option = data["serving"]["option"]
    assert option["trail"] == "trail  " and option["ff"] == "j" and option["quoted"] == '"quoted"'
    assert option["num"] == "007" and option["bool"] == "TRUE" and option["spaced"] == "42  "
    assert "comment" not in option


@pytest.mark.parametrize("bad, line", [(b"export OPTION_A=1\n", 1), (b"OPTION_A=1\n=2\n", 2),
                                       (b"OPTION_A=1\nOPTION_B=\xff\n", 2), (b"OPTION A=1\n", 1),
                                       (b"A=" + b"x" * 70_000 + b"\n", 1)])
def test_env_file_docker_refuses_is_refused_located(bad: bytes, line: int, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc, err, _ = import_recipe(tmp_path, capsys, env=bad)
    check_refused(rc, err, expect=f"docker.env:{line}:1: error:")


@pytest.mark.parametrize("text, value", [("007", "007"), ("TRUE", "TRUE"), ("42  ", "42  "), ("true", True),
                                         ("42", 42), ("-3", -3), ("+3", "+3"), ("0x10", "0x10"), ("1e3", "1e3"),
                                         ("", ""), ("yes", "yes"), ("-0", "-0")])
def test_import_keeps_option_values_as_lmi_reads_them(text: str, value: object, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    props = (BASE_PROPS + f"option.custom_x={text}\n").encode()
    rc, err, data = import_recipe(tmp_path, capsys, props=props)
    assert rc == 0, err
    assert data is not None and data["serving"]["option"]["custom_x"] == value
    assert type(data["serving"]["option"]["custom_x"]) is type(value)


def test_import_refuses_an_input_over_the_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    props = (BASE_PROPS + "option.custom_x=" + "x" * (1 << 20) + "\n").encode()
    rc, err, _ = import_recipe(tmp_path, capsys, props=props)
    check_refused(rc, err, expect="serving.properties: error: [file-too-large]")
    assert not (tmp_path / "r.yaml").exists()


def test_import_errors_point_into_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for extra, key in (("job_queue_size=many\n", "job_queue_size"),  # a type error (pydantic)
                       ("option.tensor_parallel_degree=zero\n", "option.tensor_parallel_degree"),  # a rule
                       ("option.rolling_batch=\\\n  vllm\\n\n", "option.rolling_batch")):  # a continued line
        rc, err, _ = import_recipe(tmp_path, capsys, props=(BASE_PROPS + "\n" + extra).encode())
        check_refused(rc, err)
        assert ".lmi-import-check" not in err and "r.yaml" not in err
        assert "serving.properties:5:1: error:" in err and key in err, err
    rc, err, _ = import_recipe(tmp_path, capsys, env=b"HF_MODEL_ID=org/m\nSERVING_JOB_QUEUE_SIZE=x\n")
    check_refused(rc, err, expect="docker.env:2:1: error:")
    assert "SERVING_JOB_QUEUE_SIZE" in err


@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("which", ["properties", "env-file"])
def test_special_file_as_import_input(kind: str, which: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = special_files(tmp_path)[kind]
    argv = ["import", str(path)] if which == "properties" else ["import", "--env-file", str(path)]
    rc, err = cli([*argv, "--family", "lmi", "--version", "lmi-27.0.0", "-o", str(tmp_path / "r.yaml")], capsys)
    if kind == "dev-null":  # an empty file: a recipe with no model id is refused by validation, located
        assert rc in (0, 1), err
    else:
        check_refused(rc, err)
    if rc != 0:
        assert not (tmp_path / "r.yaml").exists()


# Values of one option as they may appear in a serving.properties file (bytes, as LMI's
# Properties.load(InputStream) reads them: ISO-8859-1 plus escapes).
PROPERTY_VALUES = [b"007", b"TRUE", b"42  ", b"  lead", b"a\\u2028b", b"caf\xc3\xa9", b"caf\\u00e9", b"a\\\\b",
                   b"a\\\n   b", b"x\\tz", b"#notcomment", b"a=b:c", b"\\u0085", b"tab\there", b"sp ace",
                   b"\xff\xfe", b"end\\", b"\\ud83d\\ude00", b"\\ud800", b"\x0bvt", b"\x0cff", b"\x1cfs", b"\x85nel",
                   b"a\rOPTION.EVIL=1", b"\\r\\n", b"\\!bang"]


@pytest.mark.timeout(300)  # one JVM for the batch; minutes on a loaded 2-core machine
@needs_java
def test_import_round_trips_through_javas_properties(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What Java reads from the input is what Java reads from the serving.properties the imported
    recipe renders; or the import is refused, located in the input."""
    originals, rendered, imported = [], [], []
    for i, value in enumerate(PROPERTY_VALUES):
        case = tmp_path / str(i)
        case.mkdir()
        props = BASE_PROPS.encode() + b"option.custom_x=" + value + b"\n"
        rc, err, _ = import_recipe(case, capsys, props=props)
        originals.append(case / "serving.properties")
        if rc != 0:
            check_refused(rc, err, expect=f"{case / 'serving.properties'}:4:1: error:")
            continue
        out = case / "rendered.properties"
        out.write_text(rendered_properties(case / "r.yaml"), encoding="ascii")
        rendered.append(out)
        imported.append(i)
    maps = java_load(*originals, *rendered)
    want, got = maps[:len(originals)], maps[len(originals):]
    for i, back in zip(imported, got, strict=True):
        assert back["option.custom_x"] == want[i]["option.custom_x"], (PROPERTY_VALUES[i], back, want[i])
        assert not [k for k in back if "evil" in k.lower()], back  # no value added a key
    assert len(imported) >= len(PROPERTY_VALUES) // 2  # most of them import; the rest are refused, located


# --- CLI misuse -----------------------------------------------------------------------------------

def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """argparse's own refusal (exit 2) or a UsageError: either way one line, no traceback."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = int(exc.code or 0)
    err = capsys.readouterr().err
    check_refused(rc, err)
    assert rc == 2, err
    return err


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "soon"])
def test_predict_timeout_must_be_positive(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["predict", "img", "--data", "{}", "--timeout", value], capsys)
    assert "--timeout" in err


@pytest.mark.parametrize("kind", SPECIAL)
def test_predict_data_from_a_special_file(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import builder.engine

    def no_engine(stage: str, **_: object) -> None:  # the body is read before any engine is asked
        raise AssertionError("docker was contacted before --data was read")

    monkeypatch.setattr(builder.engine, "docker_client", no_engine)
    path = special_files(tmp_path)[kind]
    err = usage_error(["predict", "img", "--data", f"@{path}"], capsys)
    assert "--data @" in err


def test_predict_data_file_over_the_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from builder.commands.predict import MAX_DATA_BYTES

    body = write(tmp_path / "big.json", b'{"inputs": "' + b"x" * MAX_DATA_BYTES + b'"}')
    assert "larger than" in usage_error(["predict", "img", "--data", f"@{body}"], capsys)


def test_predict_data_file_holding_an_at_is_not_read_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = write(tmp_path / "at.json", "@/dev/zero")
    assert "not JSON" in usage_error(["predict", "img", "--data", f"@{body}"], capsys)


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "x"])
def test_cache_prune_older_than_must_be_positive(value: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    usage_error(["cache", "prune", "--older-than", value, "--cache-dir", str(tmp_path)], capsys)


@pytest.mark.parametrize("argv", [["cache", "ls"], ["cache", "prune", "--dry-run"], ["validate", "r.yaml"],
                                  ["build", "r.yaml"]])
@pytest.mark.parametrize("blank", ["", " "])
def test_blank_cache_dir_is_refused(argv: list[str], blank: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "r.yaml", GOOD)
    usage_error([*argv, "--cache-dir", blank], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]  # nothing scattered here


def test_blank_cache_dir_in_library_calls_is_refused() -> None:
    from builder.diagnostics import UsageError
    from builder.paths import cache_dir

    with pytest.raises(UsageError):
        cache_dir("")


# --- recipe field types: what YAML reads is not silently converted --------------------------------

def recipe_with(path: tuple[str, ...], value: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return data


@pytest.mark.parametrize("path, value", [
    (("smoke", "readiness_timeout_s"), True),  # lax pydantic read it as 1
    (("smoke", "request_timeout_s"), False),
    (("smoke", "max_new_tokens"), "32"),
    (("smoke", "concurrent_requests"), 2.0),
    (("compile", "timeout_s"), True),
    (("serving", "job_queue_size"), True),
    (("serving", "job_queue_size"), 2**31),  # Integer.parseInt fails at start
    (("serving", "batch_size"), -(2**31) - 1),
    (("serving", "maxWorkers"), 10**20),
    (("serving", "option", "model_loading_timeout"), 2**31),
    (("serving", "option", "predict_timeout"), str(2**40)),
    (("model", "trust_remote_code"), "yes"),
    (("model", "bake"), 1),
    (("smoke", "enabled"), "true"),
])
def test_wrong_scalar_types_are_refused_located(path: tuple[str, ...], value: object, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write(tmp_path / "r.yaml", recipe_with(path, value))
    rc, err = cli(["validate", str(recipe)], capsys)
    check_refused(rc, err)
    line = next(i for i, text in enumerate(recipe.read_text().splitlines(), 1)
                if text.strip().startswith(f"{path[-1]}:"))
    assert f"r.yaml:{line}:" in err, err  # at the value's own line


@pytest.mark.parametrize("path, value", [(("serving", "job_queue_size"), 2**31 - 1),
                                         (("serving", "option", "model_loading_timeout"), 2**31 - 1),
                                         (("smoke", "readiness_timeout_s"), 3600)])
def test_in_range_values_still_validate(path: tuple[str, ...], value: object, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = cli(["validate", str(write(tmp_path / "r.yaml", recipe_with(path, value)))], capsys)
    assert rc == 0, err


# --- every control and Unicode line break in every string field -----------------------------------

# Each string field of a recipe, and the serving.properties key its value lands in (None: none).
STRING_FIELDS: list[tuple[tuple, str | None]] = [
    (("name",), None), (("description",), None), (("model", "id"), None),
    (("model", "revision"), None), (("container", "version"), None),
    (("target", "instance_type"), None), (("target", "region"), None), (("serving", "engine"), "engine"),
    (("serving", "load_on_devices"), "load_on_devices"), (("serving", "translatorFactory"), "translatorFactory"),
    (("serving", "option", "custom_x"), "option.custom_x"), (("serving", "option", "dtype"), "option.dtype"),
    (("compile", "quantization"), None), (("smoke", "prompt"), None), (("smoke", "expect_regex"), None),
    (("smoke", "shm_size"), None), (("smoke", "env", "MY_VAR"), None), (("env", "MY_VAR"), None),
    (("publish", "registry"), None), (("container", "image"), None),
    (("model", "entry_point"), None), (("model", "requirements"), None), (("model", "files", 0), None),
    (("serving", "pass_through", 1), None), (("compile", "options", "x"), None),
    (("compile", "calibration", "x"), None), (("publish", "tags", 0), None),
    # keys: the character in a key of option, env and smoke.env
    (("serving", "option", "KEY"), None), (("env", "KEY"), None), (("smoke", "env", "KEY"), None),
]
CONTROL_CHARS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\x1b",
                 "\x7f", "\x9b", "\ufeff", "\u202e", "\t", "\x01", "\\", "\\n", "\\u000a", "#", "!", "=", ":"]


def docker_env_names(raw: bytes) -> list[str]:
    """The variable names docker's kvfile reads (independent of the importer's parser): lines split
    on \\n, one trailing \\r dropped, leading Unicode white space trimmed, '#' lines skipped."""
    names = []
    for line in raw.split(b"\n"):
        text = line.removesuffix(b"\r").decode("utf-8").lstrip(
            "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
            "\u2028\u2029\u202f\u205f\u3000")
        if text and not text.startswith("#"):
            names.append(text.split("=", 1)[0])
    return names


def hostile_recipe(path: tuple, value: str) -> dict:
    """GOOD with ``value`` at ``path`` (an int part: a list item; a last part "KEY": ``value`` is the key)."""
    data = recipe_with(("serving", "pass_through"), ["custom_x"])
    node = data
    for part, nxt in zip(path[:-1], path[1:], strict=True):
        if isinstance(node, dict):
            node = node.setdefault(part, [] if isinstance(nxt, int) else {})
        else:
            node = node[part]
    last = path[-1]
    if last == "KEY":
        node[value] = "v"
        if path[:2] == ("serving", "option"):
            data["serving"]["pass_through"].append(value)
    elif isinstance(last, int):
        node[last:] = [value]
    else:
        node[last] = value
    return data


@pytest.mark.timeout(300)  # one JVM for the batch; minutes on a loaded 2-core machine
@needs_java
def test_control_chars_in_every_string_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused with a located one-line error, or rendered so that Java reads back exactly the value
    and no key is added; serving.env read by docker's rules gets no extra variable either."""
    rendered, expect = [], []
    refused = accepted = 0
    for f, (path, prop) in enumerate(STRING_FIELDS):
        for c, ch in enumerate(CONTROL_CHARS):
            # a key holds no '=' (refused outright): there, "evil" after the character must stay in the key
            value = f"k{ch}evil" if path[-1] == "KEY" else f"a{ch}option.evil=1"
            case = tmp_path / f"{f}-{c}"
            case.mkdir()
            recipe = write(case / "r.yaml", yaml.safe_dump(hostile_recipe(path, value), allow_unicode=True))
            rc, err = cli(["render", str(recipe), "-o", str(case / "out")], capsys)
            if rc != 0:
                refused += 1
                check_refused(rc, err)
                assert "r.yaml:" in err, (path, ascii(ch), err)
                continue
            accepted += 1
            assert rc == 0, err
            names = docker_env_names((case / "out" / "serving.env").read_bytes())
            assert not [n for n in names if "EVIL" in n.upper() and n.upper() != f"OPTION_{value.upper()}"], \
                (path, ascii(ch), names)
            rendered.append(case / "out" / "serving.properties")
            node = yaml.safe_load(recipe.read_text(encoding="utf-8"))  # the value as YAML reads the file
            for part in path if prop else ():
                node = node[part]
            expect.append((path, ch, prop, node, value))
    for (path, ch, prop, node, value), back in zip(expect, java_load(*rendered), strict=True):
        assert not [k for k in back if "evil" in k.lower() and k != f"option.{value}"], (path, ascii(ch), back)
        if prop is not None:
            assert back[prop] == node, (path, ascii(ch), back.get(prop))
    assert refused and accepted  # both outcomes occur: the property is not vacuous


def test_properties_file_with_a_bom_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Java's Properties.load(InputStream) makes the BOM part of the first key: LMI would lose it
    rc, err, _ = import_recipe(tmp_path, capsys, props=b"\xef\xbb\xbf" + BASE_PROPS.encode())
    check_refused(rc, err, expect="serving.properties:1:1: error: [properties-bom]")


@pytest.mark.parametrize("argv", [["validate", "/dev/zero"], ["render", "/dev/zero", "-o", "out"],
                                  ["import", "/dev/zero", "--family", "lmi", "--version", "lmi-27.0.0"],
                                  ["import", "--env-file", "/dev/zero", "--family", "lmi", "--version", "lmi-27.0.0"],
                                  ["predict", "img", "--data", "@/dev/zero"]])
def test_dev_zero_in_a_memory_limited_process(argv: list[str], tmp_path: Path) -> None:
    proc = run_limited(argv, cwd=tmp_path, timeout=30, mem_gib=1.0)
    check_refused(proc.returncode, proc.stderr)
    assert list(tmp_path.iterdir()) == []


_PROPERTY_ALPHABET = "ab \t\f#!=:\\u00e9\x85\u2028\r\n0{}"


@pytest.mark.timeout(300)  # one JVM for the batch; minutes on a loaded 2-core machine
@needs_java
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(st.binary(max_size=16), st.text(_PROPERTY_ALPHABET, max_size=16).map(
    lambda t: t.encode("latin-1", "replace"))), min_size=20, max_size=20))
def test_import_round_trip_generated(values: list[bytes], tmp_path_factory: pytest.TempPathFactory,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Arbitrary bytes after `option.custom_x=`: what Java reads from the input, Java reads back from
    the rendered recipe; or the import is refused, located in the input file."""
    tmp_path = tmp_path_factory.mktemp("gen")
    originals, rendered, imported = [], [], []
    for i, value in enumerate(values):
        case = tmp_path / str(i)
        case.mkdir()
        rc, err, _ = import_recipe(case, capsys, props=BASE_PROPS.encode() + b"option.custom_x=" + value + b"\n")
        if rc != 0:  # e.g. a malformed \\u escape, which Java's load refuses too
            check_refused(rc, err, expect=f"{case / 'serving.properties'}:")
            continue
        originals.append(case / "serving.properties")
        out = case / "rendered.properties"
        out.write_text(rendered_properties(case / "r.yaml"), encoding="ascii")
        rendered.append(out)
        imported.append(i)
    maps = java_load(*originals, *rendered)
    want, got = maps[:len(originals)], maps[len(originals):]
    for i, original, back in zip(imported, want, got, strict=True):
        assert back.get("option.custom_x") == original.get("option.custom_x"), (values[i], back, original)


def test_import_wrote_line_cannot_forge_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "a\n1 recipe(s): 1 valid"
    folder.mkdir()
    props = write(folder / "serving.properties", BASE_PROPS)
    rc, err = cli(["import", str(props), "--family", "lmi", "--version", "lmi-27.0.0", "--instance-type",
                   "ml.g5.xlarge", "-o", str(folder / "r.yaml")], capsys)
    assert rc == 0, err
    assert not any(line.startswith("1 recipe(s)") for line in err.splitlines()), err
