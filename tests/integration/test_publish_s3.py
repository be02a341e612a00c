"""S3 artifacts for the stock LMI image against moto's SERVER mode (HTTP on 127.0.0.1, reached
through boto3's standard configuration and ``AWS_ENDPOINT_URL_S3``): idempotent, config-only
re-publish sends one object, interrupted uploads resumed, concurrent publishers, stale objects,
and no credential in any output."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from builder.diagnostics import BuilderError
from builder.lmi.properties import loads
from builder.lmi.resolve import resolve
from builder.paths import REPO_DIR
from builder.publish.s3_artifacts import UploadSettings, upload_layout
from builder.publish.s3_layout import LayoutFile, layout_for_build
from builder.publish.s3_publish import publish_layout
from builder.recipe import load_recipe
from tests.support.registry_fixtures import FAKE_AWS_ACCESS_KEY_ID, FAKE_AWS_SECRET_ACCESS_KEY

QUICKSTART = REPO_DIR / "recipes/examples/quickstart.yaml"
SMALL_PARTS = UploadSettings(multipart_threshold=5 << 20, part_size=5 << 20, max_concurrency=4)


def _quickstart(**option):
    loaded = load_recipe(QUICKSTART)
    recipe = loaded.recipe
    if option:
        recipe = recipe.model_copy(update={"serving": recipe.serving.model_copy(
            update={"option": {**recipe.serving.option, **option}})})
    return resolve(recipe), loaded.base_dir


def _layout(**option) -> list[LayoutFile]:
    resolved, base = _quickstart(**option)
    return layout_for_build(resolved, model_dir=base / "quickstart/model", compiled_dir=None,
                            extra_files={"model.py": base / "quickstart/model.py"})


def _objects(s3, bucket: str, prefix: str) -> dict[str, str]:
    """key -> sha256 of the bytes actually stored."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = hashlib.sha256(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()).hexdigest()
    return out


def _big(tmp_path: Path, name: str, mib: int, seed: int = 0) -> LayoutFile:
    path = tmp_path / name
    block = hashlib.sha256(str(seed).encode()).digest() * (1 << 15)  # 1 MiB, not all zeros
    with open(path, "wb") as fh:
        for i in range(mib):
            fh.write(block[i % 32:] + block[:i % 32])
    data = path.read_bytes()
    return LayoutFile(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), path=path)


def test_layout_is_the_image_layout_without_model_id():
    files = {f.name: f for f in _layout()}
    assert {"serving.properties", "model.py", "config.json"} <= set(files)
    props = loads(files["serving.properties"].data.decode())
    assert "option.model_id" not in props and props["option.entryPoint"] == "model.py"
    assert files["serving.properties"].kind == "config" and files["config.json"].kind == "model"


def test_publish_then_config_only_republish_uploads_exactly_one_object(moto_s3):
    uri = f"s3://{moto_s3.bucket}/models/quickstart/"
    s3 = moto_s3.counting()
    first = publish_layout(_layout(), uri, _quickstart()[0].to_json(), s3=s3)
    layout = _layout()
    assert first.upload.uploaded == len(layout) and first.upload.unchanged == 0
    stored = _objects(moto_s3.client(), moto_s3.bucket, "models/quickstart/")
    assert stored == {f"models/quickstart/{f.name}": f.sha256 for f in layout}
    head = moto_s3.client().head_object(Bucket=moto_s3.bucket, Key="models/quickstart/config.json")
    assert head["Metadata"]["sha256"] == stored["models/quickstart/config.json"]
    assert first.ModelDataSource == {"S3DataSource": {"S3Uri": uri, "S3DataType": "S3Prefix",
                                                      "CompressionType": "None"}}
    assert first.ContainerStartupHealthCheckTimeoutInSeconds == 60 + 120  # quickstart: model_loading_timeout 60

    moto_s3.reset()
    again = publish_layout(_layout(), uri, _quickstart()[0].to_json(), s3=s3)
    assert again.upload.uploaded == 0 and moto_s3.writes() == 0, moto_s3.calls

    moto_s3.reset()
    changed = _layout(max_new_tokens_hint=7)  # a configuration-only change
    third = publish_layout(changed, uri, _quickstart(max_new_tokens_hint=7)[0].to_json(), s3=s3)
    assert [o.key for o in third.upload.objects if o.action == "uploaded"] == ["models/quickstart/serving.properties"]
    assert moto_s3.writes() == 1 and moto_s3.calls.get("PutObject") == 1, moto_s3.calls
    text = moto_s3.client().get_object(Bucket=moto_s3.bucket, Key="models/quickstart/serving.properties")["Body"]
    assert loads(text.read().decode())["option.max_new_tokens_hint"] == "7"


def test_stale_objects_are_reported_and_only_pruned_when_asked(moto_s3, tmp_path):
    uri = f"s3://{moto_s3.bucket}/p/"
    s3 = moto_s3.client()
    s3.put_object(Bucket=moto_s3.bucket, Key="p/old-shard.safetensors", Body=b"old")
    s3.put_object(Bucket=moto_s3.bucket, Key="other/keep.bin", Body=b"x")  # outside the prefix
    report = upload_layout(_layout(), uri, s3=s3)
    assert report.stale == ["p/old-shard.safetensors"] and report.pruned == []
    assert "p/old-shard.safetensors" in _objects(s3, moto_s3.bucket, "p/")
    report = upload_layout(_layout(), uri, s3=s3, prune=True)
    assert report.pruned == ["p/old-shard.safetensors"] and report.uploaded == 0
    assert "p/old-shard.safetensors" not in _objects(s3, moto_s3.bucket, "p/")
    assert "other/keep.bin" in _objects(s3, moto_s3.bucket, "other/")


def test_upload_interrupted_mid_file_is_resumed(moto_s3, tmp_path):
    """A connection failure in the third part of a multipart upload: the transfer manager aborts
    that upload, the complete objects stay; the re-run skips them and sends the interrupted file again."""
    from botocore.exceptions import EndpointConnectionError

    uri = f"s3://{moto_s3.bucket}/big/"
    files = [*_layout(), _big(tmp_path, "model-00001.safetensors", 16)]
    s3 = moto_s3.counting()
    parts = []

    def cut(model, **_kw):
        if model.name == "UploadPart":
            parts.append(1)
            if len(parts) == 3:
                raise EndpointConnectionError(endpoint_url=moto_s3.url)

    s3.meta.events.register("before-call.s3.UploadPart", cut)
    with pytest.raises(BuilderError) as err:
        upload_layout(files, uri, s3=s3, settings=SMALL_PARTS)
    assert "run again" in (err.value.hint or "")
    plain = moto_s3.client()
    assert plain.list_multipart_uploads(Bucket=moto_s3.bucket).get("Uploads", []) == []  # aborted, not leaked
    assert "big/model-00001.safetensors" not in _objects(plain, moto_s3.bucket, "big/")
    assert "big/serving.properties" not in _objects(plain, moto_s3.bucket, "big/")  # config waits for the data

    s3.meta.events.unregister("before-call.s3.UploadPart", cut)
    moto_s3.reset()
    report = upload_layout(files, uri, s3=s3, settings=SMALL_PARTS)
    sent = {o.key for o in report.objects if o.action == "uploaded"}
    assert "big/model-00001.safetensors" in sent
    assert report.unchanged >= 1 and "big/config.json" not in sent  # complete before the cut: skipped
    assert _objects(plain, moto_s3.bucket, "big/") == {f"big/{f.name}": f.sha256 for f in files}


CHILD = """
import os, signal, sys
from pathlib import Path
from builder.publish.s3_artifacts import UploadSettings, upload_layout
from builder.publish.s3_layout import LayoutFile
from builder.registry.deadlines import s3_client
s3 = s3_client()
n = []
def die(model, **kw):
    n.append(1)
    if len(n) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
s3.meta.events.register("before-call.s3.UploadPart", die)
f = LayoutFile.model_validate_json(sys.argv[2])
upload_layout([f], sys.argv[1], s3=s3, settings=UploadSettings(multipart_threshold=5 << 20, part_size=5 << 20,
                                                                max_concurrency=1))
"""


def test_publisher_killed_mid_file_leaves_an_upload_the_next_run_reports_and_prune_aborts(moto_s3, tmp_path):
    uri = f"s3://{moto_s3.bucket}/killed/"
    big = _big(tmp_path, "weights.safetensors", 12, seed=3)
    child = subprocess.run([sys.executable, "-c", CHILD, uri, big.model_dump_json()], cwd=REPO_DIR,
                           capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert child.returncode == -signal.SIGKILL, child.stderr
    s3 = moto_s3.client()
    assert len(s3.list_multipart_uploads(Bucket=moto_s3.bucket).get("Uploads", [])) == 1
    report = upload_layout([big], uri, s3=s3, settings=SMALL_PARTS)
    assert report.uploaded == 1 and len(report.incomplete_multipart_uploads) == 1  # reported, left alone
    assert _objects(s3, moto_s3.bucket, "killed/") == {"killed/weights.safetensors": big.sha256}
    report = upload_layout([big], uri, s3=s3, settings=SMALL_PARTS, prune=True)
    assert report.uploaded == 0 and len(report.aborted_multipart_uploads) == 1
    assert s3.list_multipart_uploads(Bucket=moto_s3.bucket).get("Uploads", []) == []


def test_two_concurrent_publishers_of_one_prefix(moto_s3, tmp_path):
    uri = f"s3://{moto_s3.bucket}/shared/"
    files = [*_layout(), _big(tmp_path, "model-00001.safetensors", 12, seed=5)]
    start = threading.Barrier(2)
    results, errors = [], []

    def publisher():
        s3 = moto_s3.client()  # a client each, as two CI runners would have
        start.wait()
        try:
            results.append(upload_layout(files, uri, s3=s3, settings=SMALL_PARTS))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=publisher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2
    plain = moto_s3.client()
    assert _objects(plain, moto_s3.bucket, "shared/") == {f"shared/{f.name}": f.sha256 for f in files}
    assert plain.list_multipart_uploads(Bucket=moto_s3.bucket).get("Uploads", []) == []
    assert upload_layout(files, uri, s3=plain).uploaded == 0  # whichever won, the prefix is complete


def test_bad_uri_and_missing_bucket_are_located_one_liners(moto_s3, capsys):
    with pytest.raises(BuilderError, match="not an S3 prefix"):
        upload_layout(_layout(), "s3://Bad_Bucket/x/")
    with pytest.raises(BuilderError) as err:
        upload_layout(_layout(), "s3://no-such-bucket-here/x/")
    text = str(err.value) + (err.value.hint or "") + "".join(capsys.readouterr())
    assert "s3://no-such-bucket-here/x/" in str(err.value) and "\n" not in str(err.value)
    assert FAKE_AWS_SECRET_ACCESS_KEY not in text and FAKE_AWS_ACCESS_KEY_ID not in text


def test_pipeline_refuses_s3_artifacts_of_a_build_whose_smoke_did_not_pass(moto_s3):
    from builder.publish.s3_publish import publish_stage

    resolved, base = _quickstart()
    with pytest.raises(BuilderError, match="only after a passed smoke test") as err:
        publish_stage(resolved, f"s3://{moto_s3.bucket}/gate/", artifacts=None, compiled=None, extra_files={},
                      stand_in=None, smoke="auto", smoke_status="skipped")
    assert "--skip-smoke" in (err.value.hint or "")
    assert "Contents" not in moto_s3.client().list_objects_v2(Bucket=moto_s3.bucket)  # refused before any upload


def test_cli_refuses_a_bad_s3_uri_before_any_stage(tmp_path, capsys):
    from builder.cli import main

    rc = main(["build", str(QUICKSTART), "--cache-dir", str(tmp_path), "--s3", "s3://Bad_Bucket/x/"])
    err = capsys.readouterr().err
    assert rc == 2 and "--s3" in err and "not an S3 prefix" in err and "Traceback" not in err
    rc = main(["publish", "some-image", "--s3", "http://bucket/x/"])
    err = capsys.readouterr().err
    assert rc == 2 and "not an S3 prefix" in err and "Traceback" not in err


def test_publication_json_names_no_credentials(moto_s3, capsys):
    pub = publish_layout(_layout(), f"s3://{moto_s3.bucket}/sec/", _quickstart()[0].to_json())
    text = pub.model_dump_json() + "".join(capsys.readouterr())
    assert FAKE_AWS_SECRET_ACCESS_KEY not in text and FAKE_AWS_ACCESS_KEY_ID not in text
    assert json.loads(pub.model_dump_json())["image"]["digest_status"].startswith("not applicable")


# --------------------------------------------------------------------------- the quickstart, Docker


@pytest.mark.docker
def test_quickstart_build_s3_smokes_the_prefix_and_publish_from_the_image_sends_nothing_new(
        moto_s3, docker_client, devcpu_runtime, tmp_path, capsys, monkeypatch):
    """build --s3: the prefix holds the image's /opt/ml/model; the dev-cpu stand-in started with the
    prefix's files mounted at /opt/ml/model passes the smoke checks; publish IMAGE --s3 on the same
    prefix finds every object unchanged (the two layouts are the same bytes); no credential in any
    output or record."""
    import shutil
    import uuid

    from builder.cli import main
    from builder.examples.quickstart import write_example_model
    from tests.support.docker_fixtures import image_tags, remove_images_made_since

    src = REPO_DIR / "recipes/examples"
    work = tmp_path / "recipes"
    shutil.copytree(src / "quickstart", work / "quickstart", ignore=shutil.ignore_patterns("*.safetensors"))
    write_example_model(work / "quickstart/model", force=True)
    name = f"qs-s3-{uuid.uuid4().hex[:8]}"
    recipe = work / "quickstart.yaml"
    recipe.write_text((src / "quickstart.yaml").read_text().replace("name: quickstart", f"name: {name}"))
    uri = f"s3://{moto_s3.bucket}/qs/"
    cache, report = tmp_path / "cache", tmp_path / "record.json"
    before = image_tags(docker_client)
    try:
        rc = main(["build", str(recipe), "--cache-dir", str(cache), "--report", str(report), "--s3", uri])
        out = capsys.readouterr()
        assert rc == 0, out.err
        record = json.loads(report.read_text())
        s3_entry = next(p for p in record["published"] if p.get("target") == "s3")
        assert s3_entry["smoke"]["status"] == "passed", s3_entry["smoke"]
        checks = {c["name"]: c["ok"] for c in s3_entry["smoke"]["checks"]}
        assert checks.get("ready") is True and len(checks) >= 2, checks
        assert s3_entry["ModelDataSource"]["S3DataSource"]["S3Uri"] == uri
        assert s3_entry["image"]["digest_status"].startswith("not applicable")
        keys = set(_objects(moto_s3.client(), moto_s3.bucket, "qs/"))
        assert {"qs/serving.properties", "qs/model.py", "qs/config.json"} <= keys
        props = moto_s3.client().get_object(Bucket=moto_s3.bucket, Key="qs/serving.properties")["Body"].read()
        assert "option.model_id" not in loads(props.decode())

        image = out.out.strip().splitlines()[-1]
        monkeypatch.chdir(tmp_path)
        rc = main(["publish", image, "--s3", uri, "--cache-dir", str(cache)])
        pub = capsys.readouterr()
        assert rc == 0, pub.err
        answer = json.loads(pub.out)
        assert answer["upload"]["uploaded"] == 0 and answer["upload"]["unchanged"] == len(keys), answer["upload"]
        assert answer["ContainerStartupHealthCheckTimeoutInSeconds"] == 180
        everything = out.out + out.err + pub.out + pub.err + report.read_text()
        assert FAKE_AWS_SECRET_ACCESS_KEY not in everything and FAKE_AWS_ACCESS_KEY_ID not in everything

        # the recipe's own publish.s3 with --push (no image target: no image publish), after a
        # configuration-only change: the pipeline sends exactly one object
        text = recipe.read_text().replace("    model_loading_timeout: 60", "    model_loading_timeout: 90")
        recipe.write_text(text + f'publish:\n  s3: {{uri: "{uri}"}}\n')
        rc = main(["build", str(recipe), "--cache-dir", str(cache), "--report", str(report), "--push"])
        out = capsys.readouterr()
        assert rc == 0, out.err
        record = json.loads(report.read_text())
        (entry,) = record["published"]
        assert [o["key"] for o in entry["upload"]["objects"] if o["action"] == "uploaded"] == ["qs/serving.properties"]
        assert entry["smoke"]["status"] == "passed"
        props = moto_s3.client().get_object(Bucket=moto_s3.bucket, Key="qs/serving.properties")["Body"].read()
        assert loads(props.decode())["option.model_loading_timeout"] == "90"
        assert entry["ContainerStartupHealthCheckTimeoutInSeconds"] == 90 + 120
    finally:
        remove_images_made_since(docker_client, before, (name, "lmi-build/artifacts:"))


def test_a_compiled_build_publishes_the_compiled_repository_and_its_properties(moto_s3, tmp_path):
    """compile.enabled: what the runtime loads is the compiled repository (engines + config +
    tokenizer, baked in place of the raw weights), with the compile stage's property overrides."""
    from types import SimpleNamespace

    from builder.publish.s3_publish import publish_stage

    resolved, base = _quickstart()
    resolved = resolved.with_properties({"option.compiled_marker": "engines"})  # as the compile stage does
    repo = tmp_path / "compiled"
    repo.mkdir()
    (repo / "rank0.engine").write_bytes(b"engine bytes")
    (repo / "config.json").write_text("{}")
    raw = SimpleNamespace(dir=base / "quickstart/model", files=[])
    entry = publish_stage(resolved, f"s3://{moto_s3.bucket}/trt/", artifacts=raw, compiled=SimpleNamespace(dir=repo),
                          extra_files={"model.py": base / "quickstart/model.py"}, stand_in=None, smoke="never")
    stored = _objects(moto_s3.client(), moto_s3.bucket, "trt/")
    assert set(stored) == {"trt/rank0.engine", "trt/config.json", "trt/model.py", "trt/serving.properties"}
    assert stored["trt/rank0.engine"] == hashlib.sha256(b"engine bytes").hexdigest()
    props = moto_s3.client().get_object(Bucket=moto_s3.bucket, Key="trt/serving.properties")["Body"].read()
    assert loads(props.decode())["option.compiled_marker"] == "engines"
    assert entry["smoke"] == {"status": "skipped", "reason": "--smoke never"}
