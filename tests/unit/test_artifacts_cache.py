"""The shared cache: reuse across recipes, `cache ls|prune`, and `inspect` on cached/local models."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from builder.artifacts.sources import fetch_model
from builder.cli import main
from builder.recipe.model import Recipe
from tests.support.model_fixtures import recipe_data, write_recipe


def _fetch(folder: Path, base: Path, cache: Path):
    return fetch_model(Recipe.model_validate(recipe_data({"path": str(folder)})), base, cache_dir=cache)


def test_prune_removes_only_unreferenced_and_old(tiny_model_dir: Path, tmp_path: Path, capsys):
    from builder.artifacts.cache import ArtifactCache, Manifest
    from builder.artifacts.models import content_digest

    cache = tmp_path / "cache"
    ac = ArtifactCache(cache)
    # a manifest whose blobs exist (referenced), plus a stray blob and a stale temp file
    blob_src = tiny_model_dir / "config.json"
    from builder.artifacts.hashing import sha256_file
    from builder.artifacts.models import FileEntry

    sha = sha256_file(blob_src)
    ac.put_blob(blob_src, sha)
    files = [FileEntry(name="config.json", size=blob_src.stat().st_size, sha256=sha)]
    ac.write_manifest(Manifest(key="hub:a/b@" + "1" * 40, source="hub:a/b", source_kind="hub", revision="1" * 40,
                               files=files, digest=content_digest(files), created=time.time()))
    (ac.blobs / ("f" * 64)).write_bytes(b"stray")
    (ac.tmp / "s3-x.part").write_bytes(b"partial")

    assert main(["cache", "prune", "--dry-run", "--cache-dir", str(cache)]) == 0
    assert (ac.blobs / ("f" * 64)).exists()
    err = capsys.readouterr().err
    assert "would remove blob" in err and "would remove tmp" in err

    assert main(["cache", "prune", "--cache-dir", str(cache)]) == 0
    assert not (ac.blobs / ("f" * 64)).exists() and not (ac.tmp / "s3-x.part").exists()
    assert (ac.blobs / sha).exists()  # still referenced

    # older than 1 day: the manifest goes, then its blob
    for p in ac.manifests.glob("*.json"):
        old = time.time() - 3 * 86400
        os.utime(p, (old, old))
    assert main(["cache", "prune", "--older-than", "1", "--cache-dir", str(cache)]) == 0
    assert not (ac.blobs / sha).exists() and list(ac.manifests.glob("*.json")) == []


def test_cache_ls_json(tiny_model_dir: Path, tmp_path: Path, capsys):
    cache = tmp_path / "cache"
    _fetch(tiny_model_dir, tmp_path, cache)  # local folder with extras -> a snapshot
    assert main(["cache", "ls", "--format", "json", "--cache-dir", str(cache)]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [i["kind"] for i in items] == ["snapshot"]


def test_inspect_local_model_json(tiny_model, tmp_path: Path, capsys):
    folder, truth = tiny_model
    recipe = write_recipe(tmp_path, recipe_data({"path": str(folder)}, family="lmi", version="0.33.0",
                                                instance="ml.g5.xlarge", option={"max_rolling_batch_size": 2}))
    assert main(["inspect", str(recipe), "--format", "json", "--cache-dir", str(tmp_path / "c")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parameters"] == truth["parameters"] and out["weight_bytes"] == truth["weight_bytes"]
    assert out["kv_cache_bytes_per_token"] == 128 and out["devices"] == 1 and out["fits"] is True
    assert out["device_memory_bytes"] == 24 << 30 and out["diagnostics"] == []


def test_inspect_table(tiny_model_dir: Path, tmp_path: Path, capsys):
    recipe = write_recipe(tmp_path, recipe_data({"path": str(tiny_model_dir)}, family="lmi", version="0.33.0",
                                                instance="ml.g5.xlarge"))
    assert main(["inspect", str(recipe), "--cache-dir", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "KV cache per token" in err and "fits" in err


def test_inspect_says_when_model_is_not_local(tmp_path: Path, capsys):
    recipe = write_recipe(tmp_path, recipe_data({"id": "acme/absent", "revision": "a" * 40}, family="lmi",
                                                version="0.33.0", instance="ml.g5.xlarge"))
    assert main(["inspect", str(recipe), "--cache-dir", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert "not available locally" in err and "Traceback" not in err


def test_inspect_uses_cached_s3_model(tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch):
    from moto import mock_aws

    for k, v in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    cache = tmp_path / "cache"
    data = recipe_data({"s3": "s3://models/tiny/"}, family="lmi", version="0.33.0", instance="ml.g5.xlarge")
    with mock_aws():
        import boto3

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="models")
        for f in tiny_model_dir.glob("*.*"):
            s3.put_object(Bucket="models", Key=f"tiny/{f.name}", Body=f.read_bytes())
        fetch_model(Recipe.model_validate(data), tmp_path, cache_dir=cache)
    recipe = write_recipe(tmp_path, data)
    assert main(["inspect", str(recipe), "--format", "json", "--cache-dir", str(cache)]) == 0
    assert json.loads(capsys.readouterr().out)["model"].startswith("cached s3://models/tiny/")
