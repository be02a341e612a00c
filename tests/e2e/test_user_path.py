"""A new user's path, command by command, as the README tells them to type it (issue 14, item 3).

Every command is the installed ``lmi-build`` console script in a fresh clone, on its defaults (no
``--cache-dir``, no nox, the cache under an empty HOME), through a subprocess with a login shell's
environment (see conftest.py). Each test checks the exit code, that stderr holds no traceback, and
one piece of output that shows the command did its job.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.user import Result, User

pytestmark = pytest.mark.e2e

QUICKSTART = "recipes/examples/quickstart.yaml"
AOT_EXAMPLE = "recipes/examples/trtllm-aot-llama3-8b-g6.yaml"
PREDICT_DATA = '{"inputs": "hello", "parameters": {"max_new_tokens": 4}}'  # the README's predict line


def ok(result: Result) -> Result:
    assert result.rc == 0, result
    assert "Traceback" not in result.stderr, result
    return result


def refused(result: Result) -> str:
    """Exit 1, no traceback, exactly one ``error: STAGE: …`` line (a hint may follow it); returns the line."""
    assert result.rc == 1, result
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result
    errors = result.error_lines()
    assert len(errors) == 1, result
    assert re.match(r"error: [\w-]+: \S", errors[0]), result  # located: names the stage it stopped in
    return errors[0]


# ------------------------------------------------------------------ no engine needed

def test_validate_a_recipe(user: User):
    r = ok(user.run("validate", QUICKSTART))
    assert "1 recipe(s): 1 valid, 0 invalid" in r.stderr, r


def test_validate_a_folder(user: User):
    examples = sorted((user.clone / "recipes" / "examples").glob("*.yaml"))
    r = ok(user.run("validate", "recipes/"))
    m = re.search(r"(\d+) recipe\(s\): (\d+) valid, 0 invalid", r.stderr)
    assert m and int(m[1]) == int(m[2]) == len(examples), r


def test_render(user: User):
    out = user.home / "render"
    r = ok(user.run("render", QUICKSTART, "-o", str(out)))
    answer = json.loads(r.stdout)
    assert sorted(Path(f).name for f in answer["files"]) == ["resolved.json", "serving.env", "serving.properties"]
    props = (out / "serving.properties").read_text()
    assert re.search(r"^engine=Python$", props, re.M), props


def test_plan(user: User):
    r = ok(user.run("plan", "recipes/"))
    plan = json.loads(r.stdout)
    rows = {row["recipe"]: row for row in plan["matrix"]["include"]}
    assert rows[QUICKSTART]["kind"] == "cpu", r
    assert rows[AOT_EXAMPLE]["compiles"] is True, r


def test_inspect_quickstart(user: User):
    # a custom-handler model: what is known (files, bytes, dtype from the safetensors headers), exit 0
    r = ok(user.run("inspect", QUICKSTART))
    assert not r.error_lines(), r
    assert re.search(r"\b(F32|float32)\b", r.stdout + r.stderr), r


def _no_accelerator_here() -> None:
    if shutil.which("nvidia-smi") or list(Path("/dev").glob("neuron*")):
        pytest.skip("this host has an accelerator: the refusal is what a host without one says")


def test_aot_example_is_refused_in_one_line(user: User):
    """The example as shipped: its Hub model cannot be fetched here (no Hub) and a GPU build cannot run here;
    whichever stops it, the user reads one located line."""
    _no_accelerator_here()
    refused(user.run("build", AOT_EXAMPLE, timeout=180))


def test_aot_build_of_a_local_model_is_refused_at_compile(user: User):
    """The same recipe on the user's own model folder reaches the compile stage, which refuses (issue 14:
    without --cache-dir this was a TypeError traceback)."""
    _no_accelerator_here()
    work = user.home / "my-aot"
    ok(user.run("example-model", "--llama", str(work / "model")))
    text = (user.clone / AOT_EXAMPLE).read_text()
    text = re.sub(r"(?m)^  id: .*$", "  path: model", text)
    text = re.sub(r"(?m)^  revision: .*\n", "", text)
    (work / "recipe.yaml").write_text(text)
    line = refused(user.run("build", str(work / "recipe.yaml")))
    assert line.startswith("error: compile: compile did not run:"), line
    assert "ml.g6.12xlarge" in line, line
    assert (user.cache / "compile").is_dir()  # the default cache under HOME, not "None"


# ------------------------------------------------------------------ the Docker engine

@pytest.fixture(scope="session")
def quickstart_build(user: User, docker_client):
    """``lmi-build build recipes/examples/quickstart.yaml``, once; the images it tagged are removed at the end
    (only tags that did not exist before: another build's image is left alone)."""
    from tests.support.docker_fixtures import image_tags, remove_images_made_since

    before = image_tags(docker_client)
    yield user.run("build", QUICKSTART, timeout=900)
    remove_images_made_since(docker_client, before, ("quickstart:", "quickstart-", "lmi-build/artifacts:"))


@pytest.fixture(scope="session")
def quickstart_image(quickstart_build: Result) -> str:
    if quickstart_build.rc != 0:
        pytest.fail(f"needs the quickstart image, and its build failed:\n{quickstart_build}", pytrace=False)
    return quickstart_build.stdout.strip().splitlines()[-1]


@pytest.mark.docker
def test_build_quickstart(user: User, quickstart_build: Result):
    r = ok(quickstart_build)
    assert "smoke PASSED" in r.stderr, r
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("quickstart"), r  # the image reference is the last stdout line
    records = list((user.cache / "builds").glob("*/build-record.json"))  # default cache: under HOME
    assert records, f"no build record under {user.cache}\n{r}"


@pytest.mark.docker
def test_cache_ls_after_the_quickstart(user: User, quickstart_build: Result):
    """The default cache is ``$HOME/.cache/lmi-builder`` (the table's title). The quickstart's model folder is
    used in place (it holds only model files), so it is no cache entry; whatever is listed lives there."""
    ok(quickstart_build)
    table = ok(user.run("cache", "ls"))
    assert str(user.cache) in table.stderr.replace("\n", ""), table  # the table goes to stderr, like all prose
    items = json.loads(ok(user.run("cache", "ls", "--format", "json")).stdout)
    assert all(Path(i["path"]).is_relative_to(user.cache) for i in items), items
    assert user.cache.is_dir() and any(user.cache.iterdir())


class _Drain:
    """Reads a pipe on a thread (serve streams the server log: an unread pipe would block it)."""

    def __init__(self, pipe):
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._t.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line)

    def text(self) -> str:
        self._t.join(timeout=10)
        return "".join(self.lines)


@pytest.mark.docker
def test_serve_then_predict(user: User, quickstart_image: str, docker_client):
    serve = user.popen("serve", quickstart_image)
    out, err = _Drain(serve.stdout), _Drain(serve.stderr)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not out.lines and serve.poll() is None:
            time.sleep(0.2)
        assert out.lines and out.lines[0].startswith("http://127.0.0.1:"), \
            f"serve printed no URL (exit {serve.poll()}):\n{''.join(err.lines)[-4000:]}"

        r = ok(user.run("predict", QUICKSTART, "--data", PREDICT_DATA))
        assert "using the running serve container" in r.stderr, r
        assert "generated_text" in json.loads(r.stdout), r
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)  # Ctrl-C: how a serve session ends
        try:
            rc = serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
            rc = serve.wait()
    stderr = err.text()
    assert rc == 0, stderr[-4000:]
    assert "Traceback" not in stderr, stderr[-4000:]
    assert "removed container" in stderr, stderr[-4000:]
    from builder.smoke.image_info import inspect_image
    from builder.smoke.serving import find_running

    assert find_running(docker_client, inspect_image(docker_client, quickstart_image).image_id) is None


@pytest.mark.docker
def test_publish_quickstart_to_s3(user: User, quickstart_image: str, moto_s3_endpoint):
    """``lmi-build publish IMAGE --s3 URI`` on its defaults, S3 reached only through the standard
    ``AWS_*`` environment (moto's server): the deployment JSON on stdout, every object of the layout."""
    import boto3

    aws = {"AWS_ACCESS_KEY_ID": "AKIAE2EFAKEKEY000001", "AWS_SECRET_ACCESS_KEY": "e2e-fake-secret-never-printed",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": moto_s3_endpoint}
    bucket = f"e2e-{time.time_ns()}"
    s3 = boto3.client("s3", endpoint_url=moto_s3_endpoint, region_name="us-east-1",
                      aws_access_key_id=aws["AWS_ACCESS_KEY_ID"], aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"])
    s3.create_bucket(Bucket=bucket)
    proc = subprocess.run(user.command("publish", quickstart_image, "--s3", f"s3://{bucket}/quickstart/"),
                          cwd=user.clone, env={**user.env, **aws}, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["ModelDataSource"]["S3DataSource"] == {"S3Uri": f"s3://{bucket}/quickstart/",
                                                         "S3DataType": "S3Prefix", "CompressionType": "None"}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="quickstart/")["Contents"]}
    assert {"quickstart/serving.properties", "quickstart/model.py"} <= keys
    assert answer["upload"]["uploaded"] == len(keys)
    assert aws["AWS_SECRET_ACCESS_KEY"] not in proc.stdout + proc.stderr
