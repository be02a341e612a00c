"""S3 as the fleet's shared cache (builder/artifacts/remote.py) against moto's SERVER mode over HTTP on
127.0.0.1 (fixture ``moto_s3``: the standard boto3 configuration pointed there by AWS_ENDPOINT_URL_S3).

Runners are simulated by separate local cache folders sharing one bucket; compiles run through the
stand-in toolchain (tests/equipment/standin) like tests/unit/test_compile_local.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from builder.artifacts.cache import ArtifactCache, Manifest
from builder.artifacts.models import FileEntry
from builder.artifacts.remote import (
    RemoteCache,
    RemoteFile,
    compile_from_remote,
    entry_files,
    model_from_remote,
    sha256_file,
)
from builder.compile import compile_artifacts
from builder.compile.models import Gpu, HostAccelerators
from builder.lmi.resolve import resolve
from builder.recipe.model import Recipe
from tests.support.model_fixtures import recipe_data
from tests.support.registry_fixtures import FAKE_AWS_SECRET_ACCESS_KEY

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "equipment" / "standin"
A10G = HostAccelerators(gpus=[Gpu(name="A10G", compute_capability="8.6", memory_bytes=24 << 30)] * 4)
IMAGE = "djl-inference@sha256:" + "a" * 64
KEY = "ab" * 32


@pytest.fixture
def standin_env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(STANDIN / "site"))
    monkeypatch.setenv("LMI_BUILD_PARTITION_DIR", str(STANDIN / "partition"))
    monkeypatch.delenv("STANDIN_FAIL", raising=False)
    monkeypatch.delenv("LMI_BUILD_CACHE_REMOTE", raising=False)
    return monkeypatch


@pytest.fixture
def uri(moto_s3) -> str:
    return f"s3://{moto_s3.bucket}/fleet/cache/"


def _entry(folder: Path, content: dict[str, bytes]) -> list[tuple[RemoteFile, Path]]:
    for name, data in content.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return entry_files(folder)


def _compile(resolved, art, cache: Path, remote: str | None, host=A10G):
    return compile_artifacts(resolved, art, IMAGE, executor="local", cache_dir=cache, host=host,
                             cache_remote=remote)


def _setup(tmp_path: Path, model_dir: Path):
    data = recipe_data({"path": str(model_dir)}, family="tensorrt-llm", version="0.33.0",
                       instance="ml.g5.12xlarge", compile={"enabled": True, "executor": "local"})
    recipe = Recipe.model_validate(data)
    from builder.artifacts.sources import fetch_model

    return resolve(recipe), fetch_model(recipe, tmp_path, cache_dir=tmp_path / "runner-a")


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in folder.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- compile cache
def test_cache_hit_from_s3_skips_the_compile(standin_env, tiny_model_dir: Path, tmp_path: Path, uri: str,
                                            moto_s3, capsys):
    resolved, art = _setup(tmp_path, tiny_model_dir)
    first = _compile(resolved, art, tmp_path / "runner-a", uri)
    assert first.status == "compiled" and first.origin == "built"
    assert first.remote["upload"] == "uploaded" and first.remote["bytes_up"] > 0
    shas = {sha256_file(p) for p in (tmp_path / "runner-a" / "compile" / first.cache_key).rglob("*") if p.is_file()}
    assert first.remote["objects_up"] == len(shas) + 1  # one upload per content (4 equal rank engines), + manifest
    listed = moto_s3.client().list_objects_v2(Bucket=moto_s3.bucket, Prefix="fleet/cache/compile/")
    assert [o["Key"] for o in listed["Contents"]] == [f"fleet/cache/compile/{first.cache_key}.json"]

    # runner B: empty local cache, no GPU, and a toolchain that fails if it is run at all
    standin_env.setenv("STANDIN_FAIL", "1")
    second = _compile(resolved, art, tmp_path / "runner-b", uri, host=HostAccelerators())
    assert second.status == "cached" and second.origin == "remote" and second.cache_key == first.cache_key
    assert second.remote["bytes_down"] == first.remote["bytes_up"] - len(
        moto_s3.client().get_object(Bucket=moto_s3.bucket,
                                    Key=f"fleet/cache/compile/{first.cache_key}.json")["Body"].read())
    assert _tree(second.dir) == _tree(first.dir)  # the engine files, byte for byte
    assert second.toolchain == first.toolchain and second.properties_overrides == first.properties_overrides
    assert list((tmp_path / "runner-b" / "compile" / ".tmp").iterdir()) == []

    third = _compile(resolved, art, tmp_path / "runner-b", uri, host=HostAccelerators())
    assert third.origin == "local" and third.remote["bytes_down"] == 0
    out = capsys.readouterr()
    assert FAKE_AWS_SECRET_ACCESS_KEY not in out.err + out.out
    assert FAKE_AWS_SECRET_ACCESS_KEY not in json.dumps([r.model_dump(mode="json") for r in (first, second, third)])


def test_env_var_names_the_remote(standin_env, tiny_model_dir: Path, tmp_path: Path, uri: str):
    resolved, art = _setup(tmp_path, tiny_model_dir)
    standin_env.setenv("LMI_BUILD_CACHE_REMOTE", uri)
    assert _compile(resolved, art, tmp_path / "runner-a", None).remote["upload"] == "uploaded"
    standin_env.setenv("STANDIN_FAIL", "1")
    assert _compile(resolved, art, tmp_path / "runner-b", None, host=HostAccelerators()).origin == "remote"


def test_unreachable_remote_does_not_fail_the_compile(standin_env, tiny_model_dir: Path, tmp_path: Path, moto_s3,
                                                      capsys):
    resolved, art = _setup(tmp_path, tiny_model_dir)
    res = _compile(resolved, art, tmp_path / "runner-a", "s3://no-such-bucket-here/x/")
    assert res.status == "compiled" and res.origin == "built" and res.remote["upload"] == "failed"
    err = capsys.readouterr().err
    assert "no-such-bucket-here" in err and "the local entry is kept" in err and "Traceback" not in err


def test_remote_entry_without_marker_is_compiled_again(standin_env, tiny_model_dir: Path, tmp_path: Path,
                                                       uri: str, capsys):
    resolved, art = _setup(tmp_path, tiny_model_dir)
    from builder.compile.run import compile_cache_key

    key = compile_cache_key(resolved, art, IMAGE)
    bogus = _entry(tmp_path / "bogus", {"meta.json": b'{"marker": "trtllm-build-config"}', "out/config.json": b"{}"})
    assert RemoteCache(uri).publish("compile", key, bogus) == "uploaded"
    res = _compile(resolved, art, tmp_path / "runner-b", uri)
    assert res.status == "compiled" and res.origin == "built"
    assert "lacks the trtllm-build-config marker" in capsys.readouterr().err
    # the broken entry was replaced by this runner's whole one
    assert RemoteCache(uri).lookup("compile", key).files != [f for f, _ in bogus]


# ----------------------------------------------------------------------------- atomicity
def test_two_concurrent_writers_of_one_key_leave_one_good_entry(tmp_path: Path, uri: str):
    """Both finish their blobs before either writes the manifest (a barrier): IfNoneMatch='*' lets the
    first manifest stand; the second writer is told it lost, and the entry is the winner's, whole."""
    barrier = threading.Barrier(2)
    order: list[str] = []

    class Racing(RemoteCache):
        def __init__(self, name: str):
            super().__init__(uri)
            self.name = name

        def _before_manifest(self) -> None:
            barrier.wait(timeout=30)
            if self.name == "b":
                time.sleep(0.3)  # a goes first
            order.append(self.name)

    contents = {w: {"meta.json": json.dumps({"writer": w}).encode(), "out/rank0.engine": os.urandom(300_000),
                    "out/config.json": b'{"build_config": {}}'} for w in "ab"}
    entries = {w: _entry(tmp_path / w, contents[w]) for w in "ab"}
    results: dict[str, str] = {}

    def write(w: str) -> None:
        results[w] = Racing(w).publish("compile", KEY, entries[w], meta={"writer": w})

    threads = [threading.Thread(target=write, args=(w,)) for w in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {"a": "uploaded", "b": "lost-race"} and order == ["a", "b"]
    reader = RemoteCache(uri)
    m = reader.lookup("compile", KEY)
    assert m is not None and m.meta == {"writer": "a"}
    reader.download(m, lambda f: tmp_path / "got" / f.name)
    assert _tree(tmp_path / "got") == _tree(tmp_path / "a")


def test_writer_processes_racing_one_key(tmp_path: Path, uri: str):
    """Two processes, no coordination: whatever the interleaving, one whole entry, equal to one writer's."""
    script = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "from builder.artifacts.remote import RemoteCache, entry_files\n"
        "d = Path(sys.argv[2]); (d / 'out').mkdir(parents=True)\n"
        "(d / 'out' / 'rank0.engine').write_bytes(os.urandom(2_000_000))\n"
        "(d / 'meta.json').write_text(json.dumps({'writer': d.name}))\n"
        "print(RemoteCache(sys.argv[1]).publish('compile', sys.argv[3], entry_files(d), meta={'writer': d.name}))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, uri, str(tmp_path / w), KEY], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in ("p1", "p2")]
    outs = [p.communicate(timeout=120) for p in procs]
    results = sorted(o.strip().splitlines()[-1] for o, _ in outs)
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert set(results) <= {"uploaded", "lost-race", "present"} and "uploaded" in results
    reader = RemoteCache(uri)
    m = reader.lookup("compile", KEY)
    assert m is not None
    reader.download(m, lambda f: tmp_path / "got" / f.name)
    assert _tree(tmp_path / "got") == _tree(tmp_path / m.meta["writer"])


def test_a_reader_racing_a_writer_never_sees_half_an_entry(tmp_path: Path, uri: str):
    """The writer is held after its first blob; a reader then finds no entry (not a partial one) and
    leaves no local folder; once the manifest is written the reader gets all of it."""
    uploaded_one, go_on = threading.Event(), threading.Event()

    class Slow(RemoteCache):
        def _put_blob(self, f, path):
            super()._put_blob(f, path)
            uploaded_one.set()
            assert go_on.wait(timeout=30)

    files = _entry(tmp_path / "w", {f"out/rank{i}.engine": os.urandom(50_000) for i in range(6)}
                   | {"meta.json": b"{}"})
    result: list[str] = []
    writer = threading.Thread(target=lambda: result.append(Slow(uri).publish("compile", KEY, files)))
    writer.start()
    assert uploaded_one.wait(timeout=30)
    reader = RemoteCache(uri)
    blobs = moto_keys(reader, "blobs/")
    assert blobs, "a blob is up already"
    assert reader.lookup("compile", KEY) is None
    final = tmp_path / "reader" / KEY
    assert compile_from_remote(reader, KEY, tmp_path / "reader" / ".tmp" / "x", final) is False
    assert not final.exists()
    go_on.set()
    writer.join(timeout=60)
    assert result == ["uploaded"]
    assert compile_from_remote(reader, KEY, tmp_path / "reader" / ".tmp" / "x", final) is True
    assert _tree(final) == _tree(tmp_path / "w")


def test_a_reader_polling_during_uploads_only_ever_sees_whole_entries(tmp_path: Path, uri: str):
    files = _entry(tmp_path / "w", {f"f{i}": os.urandom(20_000) for i in range(24)})
    writer = threading.Thread(target=lambda: RemoteCache(uri).publish("compile", KEY, files))
    reader = RemoteCache(uri)
    seen = {"miss": 0, "whole": 0}
    writer.start()
    for n in range(200):
        dest = tmp_path / f"poll{n}"
        if compile_from_remote(reader, KEY, tmp_path / f".tmp{n}", dest):
            assert _tree(dest) == _tree(tmp_path / "w")
            seen["whole"] += 1
            break
        assert not dest.exists()
        seen["miss"] += 1
    writer.join(timeout=60)
    assert seen["whole"] == 1 and seen["miss"] >= 1


def moto_keys(remote: RemoteCache, sub: str) -> list[str]:
    return [o["Key"] for o in remote._objects(sub)]


def test_entries_whose_blobs_do_not_match_are_not_trusted(tmp_path: Path, uri: str, moto_s3, capsys):
    files = _entry(tmp_path / "w", {"meta.json": b"{}", "out/a": b"a" * 1000, "out/b": b"b" * 1000})
    remote = RemoteCache(uri)
    assert remote.publish("compile", KEY, files) == "uploaded"
    s3 = moto_s3.client()
    b = next(f for f, _ in files if f.name == "out/b")
    # same size, same sha256 metadata, other bytes: caught while streaming
    s3.put_object(Bucket=moto_s3.bucket, Key=remote.blob_key(b.sha256), Body=b"X" * 1000,
                  Metadata={"sha256": b.sha256})
    final = tmp_path / "r" / KEY
    assert compile_from_remote(remote, KEY, tmp_path / "r" / ".tmp" / "t", final) is False
    assert not final.exists() and not (tmp_path / "r" / ".tmp" / "t").exists()
    assert "the manifest lists 1000 bytes" in capsys.readouterr().err
    # a blob gone (pruned under the entry): a miss, and the next writer repairs the entry
    s3.delete_object(Bucket=moto_s3.bucket, Key=remote.blob_key(b.sha256))
    assert remote.lookup("compile", KEY) is None
    assert "blob " + b.sha256[:12] + " is missing" in capsys.readouterr().err
    assert RemoteCache(uri).publish("compile", KEY, files) == "uploaded"
    assert remote.lookup("compile", KEY) is not None
    # a manifest that names a path outside the entry is refused before any download
    evil = {"format": 1, "kind": "compile", "key": KEY, "created": 0,
            "files": [{"name": "../../etc/x", "size": 1, "sha256": "0" * 64}]}
    s3.put_object(Bucket=moto_s3.bucket, Key=remote.manifest_key("compile", KEY), Body=json.dumps(evil).encode())
    assert remote.lookup("compile", KEY) is None
    assert "unsafe file name" in capsys.readouterr().err


# ----------------------------------------------------------------------------- model cache
def test_fetched_model_comes_from_s3_without_the_hub(tmp_path: Path, uri: str, tiny_model_dir: Path,
                                                     monkeypatch):
    import shutil

    from builder.artifacts import sources

    sha = "c" * 40
    snap = tmp_path / "hf" / "snapshots" / sha
    shutil.copytree(tiny_model_dir, snap)
    (snap / "tokenizer_copy.json").write_bytes((snap / "tokenizer.json").read_bytes())  # duplicate content
    monkeypatch.setattr(sources, "_hub_download", lambda repo, rev, trust: snap)
    recipe = Recipe.model_validate(recipe_data({"id": "org/tiny", "revision": sha}))
    a = sources.fetch_model(recipe, tmp_path, cache_dir=tmp_path / "runner-a", cache_remote=uri)
    assert a.origin == "built"

    def no_hub(*a, **k):
        raise AssertionError("the Hub was asked although the remote cache has the model")

    monkeypatch.setattr(sources, "_hub_download", no_hub)
    b = sources.fetch_model(recipe, tmp_path, cache_dir=tmp_path / "runner-b", cache_remote=uri)
    assert b.origin == "remote" and b.digest == a.digest and _tree(b.dir) == _tree(a.dir)
    assert list((tmp_path / "runner-b" / "models" / "tmp").glob("remote-*")) == []
    again = sources.fetch_model(recipe, tmp_path, cache_dir=tmp_path / "runner-b", cache_remote=uri)
    assert again.origin == "local"


def test_model_download_interrupted_leaves_no_local_entry(tmp_path: Path, uri: str, monkeypatch):
    cache_a = ArtifactCache(tmp_path / "a", remote=RemoteCache(uri))
    files = []
    for name, data in {"config.json": b"{}", "model.safetensors": os.urandom(100_000)}.items():
        p = tmp_path / name
        p.write_bytes(data)
        files.append(FileEntry(name=name, size=len(data), sha256=sha256_file(p)))
        cache_a.put_blob(p, files[-1].sha256)
    cache_a.write_manifest(Manifest(key="hub:o/n@" + "d" * 40, source="hub:o/n", source_kind="hub",
                                    revision="d" * 40, files=files, digest="sha256:" + "0" * 64, created=0))
    cache_b = ArtifactCache(tmp_path / "b", remote=RemoteCache(uri))
    real_get = RemoteCache._get

    def flaky(self, f, dest):
        if f.name == "model.safetensors":
            raise KeyboardInterrupt
        return real_get(self, f, dest)

    monkeypatch.setattr(RemoteCache, "_get", flaky)
    with pytest.raises(KeyboardInterrupt):
        model_from_remote(cache_b, "hub:o/n@" + "d" * 40)
    assert cache_b.manifest("hub:o/n@" + "d" * 40, remote=False) is None
    assert list(cache_b.tmp.iterdir()) == []
    monkeypatch.setattr(RemoteCache, "_get", real_get)
    m = cache_b.manifest("hub:o/n@" + "d" * 40)
    assert m is not None and m.origin == "remote" and all(cache_b.has_blob(f) for f in m.files)


# ----------------------------------------------------------------------------- ls / prune
def _ages(moto_s3, prefix: str) -> dict[str, float]:
    out = moto_s3.client().list_objects_v2(Bucket=moto_s3.bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: o["LastModified"].timestamp() for o in out}


def test_remote_prune_by_age_then_unreferenced_blobs(tmp_path: Path, uri: str, moto_s3):
    remote = RemoteCache(uri)
    shared = os.urandom(1000)
    old = _entry(tmp_path / "old", {"meta.json": b'{"v": "old"}', "shared": shared, "only-old": b"o" * 500})
    assert remote.publish("compile", "11" * 32, old) == "uploaded"
    time.sleep(1.2)
    new = _entry(tmp_path / "new", {"meta.json": b'{"v": "new"}', "shared": shared})
    assert remote.publish("compile", "22" * 32, new) == "uploaded"
    ages = _ages(moto_s3, "fleet/cache/compile/")
    t_old, t_new = ages[remote.manifest_key("compile", "11" * 32)], ages[remote.manifest_key("compile", "22" * 32)]
    assert t_new > t_old
    now = t_new + 0.1
    days = ((now - t_old) + (now - t_new)) / 2 / 86400  # between the two ages

    dry = remote.prune(older_than_days=days, dry_run=True, now=now)
    assert [i.kind for i in dry] == ["compile"] and remote.lookup("compile", "11" * 32) is not None
    gone = remote.prune(older_than_days=days, dry_run=False, now=now)
    assert [(i.kind, i.name) for i in gone] == [("compile", "11" * 6)]
    assert remote.lookup("compile", "11" * 32) is None and remote.lookup("compile", "22" * 32) is not None
    only_old = {f.sha256 for f, _ in old} - {f.sha256 for f, _ in new}  # only-old and old's meta.json
    assert len(only_old) == 2
    assert {remote.blob_key(s) for s in only_old} <= set(moto_keys(remote, "blobs/"))  # younger than the grace

    later = remote.prune(older_than_days=None, dry_run=False, now=now + 2 * 86400)
    assert sorted((i.kind, i.name) for i in later) == sorted(("blob", s[:12]) for s in only_old)
    assert remote.lookup("compile", "22" * 32) is not None  # still whole: its blobs were referenced


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "builder", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_cache_ls_and_prune_cli_on_the_remote(tmp_path: Path, uri: str, moto_s3):
    files = _entry(tmp_path / "e", {"meta.json": b"{}", "out/x": b"x" * 2048})
    assert RemoteCache(uri).publish("compile", KEY, files, meta={"family": "tensorrt-llm", "version": "0.33.0",
                                                                  "arch": "sm_86", "tensor_parallel_degree": 4})
    ls = _cli("cache", "ls", "--cache-remote", uri, "--format", "json")
    assert ls.returncode == 0, ls.stderr
    rows = json.loads(ls.stdout)
    assert [(r["kind"], r["name"], r["detail"]) for r in rows][0] == ("compile", KEY[:12],
                                                                     "tensorrt-llm 0.33.0 sm_86 tp=4")
    assert rows[1]["kind"] == "blobs" and rows[1]["bytes"] == 2050
    table = _cli("cache", "ls", "--cache-remote", env={"LMI_BUILD_CACHE_REMOTE": uri, "COLUMNS": "200"})
    assert table.returncode == 0 and KEY[:12] in table.stderr  # the table is for people: stderr
    dry = _cli("cache", "prune", "--cache-remote", uri, "--dry-run")
    assert dry.returncode == 0 and "would remove 0 objects" in dry.stderr
    for out in (ls, table, dry):
        assert FAKE_AWS_SECRET_ACCESS_KEY not in out.stdout + out.stderr


@pytest.mark.parametrize("args, message", [
    (["prune", "--cache-remote", "s3://b-bucket/x/", "--older-than", "-5"], "give a number of days > 0"),
    (["prune", "--cache-remote", "s3://b-bucket/x/", "--older-than", "nan"], "give a number of days > 0"),
    (["ls", "--cache-remote", "https://bucket/x/"], "give an s3:// URI"),
    (["ls", "--cache-remote", "s3://Bad_Bucket/x/"], "is not an S3 bucket name"),
    (["prune", "--cache-remote", "s3://b-bucket/a/../b/"], "'..' segment"),
])
def test_cache_cli_refuses_bad_arguments_in_one_line(args, message, moto_s3):
    out = _cli("cache", *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_bare_cache_remote_without_the_variable_is_a_usage_error(moto_s3, monkeypatch):
    monkeypatch.delenv("LMI_BUILD_CACHE_REMOTE", raising=False)
    out = _cli("cache", "prune", "--cache-remote")
    assert out.returncode == 2 and "LMI_BUILD_CACHE_REMOTE, which is not set" in out.stderr


def test_missing_bucket_is_one_line_without_secrets(moto_s3):
    out = _cli("cache", "ls", "--cache-remote", "s3://no-such-bucket-anywhere/p/")
    assert out.returncode == 1 and "NoSuchBucket" in out.stderr and "Traceback" not in out.stderr
    assert FAKE_AWS_SECRET_ACCESS_KEY not in out.stderr


def test_a_hit_refreshes_last_used_at_most_daily(tmp_path: Path, uri: str, moto_s3):
    remote = RemoteCache(uri)
    assert remote.publish("compile", KEY, _entry(tmp_path / "e", {"meta.json": b"{}"})) == "uploaded"
    mkey = remote.manifest_key("compile", KEY)
    before = _ages(moto_s3, mkey)[mkey]
    time.sleep(1.1)
    assert remote.lookup("compile", KEY) is not None
    assert _ages(moto_s3, mkey)[mkey] == before  # used within the day: no write
    assert remote.lookup("compile", KEY, now=time.time() + 2 * 86400) is not None
    assert _ages(moto_s3, mkey)[mkey] > before  # prune's "last used" moved
    assert remote.lookup("compile", KEY) is not None  # still a whole entry after the copy onto itself


def test_build_record_says_where_the_compile_came_from(standin_env, tiny_model_dir: Path, tmp_path: Path,
                                                       uri: str, monkeypatch):
    """Through run_build: fetch and compile really run (stand-in, a GPU host injected); the bake is
    stopped, and the record written on failure carries each stage's cache_origin."""
    import yaml

    from builder.compile import run as compile_run
    from builder.diagnostics import BuilderError
    from builder.image import bake
    from builder.options import BuildOptions
    from builder.pipeline import run_build

    monkeypatch.setattr(compile_run, "detect_host", lambda: A10G)

    def stop(*a, **k):
        raise BuilderError("stopped after compile by the test", stage="bake")

    monkeypatch.setattr(bake, "assemble", stop)  # the docker assembler
    data = recipe_data({"path": tiny_model_dir.name}, family="tensorrt-llm", version="0.33.0",
                       instance="ml.g5.12xlarge", compile={"enabled": True, "executor": "local"})
    assert tiny_model_dir.parent == tmp_path  # model.path is relative to the recipe file
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    origins = []
    for runner in ("a", "b"):
        if runner == "b":
            standin_env.setenv("STANDIN_FAIL", "1")  # runner b must not compile
        report = tmp_path / f"{runner}.json"
        with pytest.raises(BuilderError, match="stopped after compile"):
            run_build(BuildOptions(recipe=tmp_path / "r.yaml", report=report, cache_dir=tmp_path / runner,
                                   cache_remote=uri))
        record = json.loads(report.read_text())
        compile_stage = next(s for s in record["stages"] if s["name"] == "compile")
        origins.append((compile_stage["status"], compile_stage["details"]["cache_origin"],
                        compile_stage["details"]["cache_remote"]["uri"]))
        assert FAKE_AWS_SECRET_ACCESS_KEY not in report.read_text()
    assert origins == [("passed", "built", uri), ("cached", "remote", uri)]
