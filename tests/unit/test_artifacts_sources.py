"""fetch_model: local folders, the Hub (offline, a hand-made HF cache) and S3 (moto)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from builder.artifacts.cache import ArtifactCache
from builder.artifacts.sources import fetch_model
from builder.diagnostics import BuilderError
from builder.recipe.model import Recipe
from tests.support.model_fixtures import make_tiny_model, recipe_data

SHA = "0123456789abcdef0123456789abcdef01234567"


def _recipe(**model) -> Recipe:
    return Recipe.model_validate(recipe_data(model))


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_local_folder_selects_runtime_files_and_snapshots(tiny_model_dir: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    art = fetch_model(_recipe(path=str(tiny_model_dir)), tmp_path, cache_dir=cache)
    names = sorted(f.name for f in art.files)
    assert names == ["config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json",
                     "tokenizer_config.json"]
    # README.md and original/*.pth are left out, so the baked folder is a snapshot in the cache
    assert art.dir.is_relative_to(cache)
    assert sorted(p.name for p in art.dir.iterdir()) == names
    for f in art.files:
        assert f.sha256 == _sha(tiny_model_dir / f.name)
        assert f.size == (tiny_model_dir / f.name).stat().st_size
    assert art.digest.startswith("sha256:") and art.source_kind == "path" and not art.cached


def test_local_folder_used_in_place_when_exact(tmp_path: Path):
    folder = tmp_path / "m"
    make_tiny_model(folder, extras=False)
    art = fetch_model(_recipe(path="m"), tmp_path, cache_dir=tmp_path / "cache")
    assert art.dir == folder.resolve()


def test_unchanged_local_weights_are_not_rehashed(tiny_model_dir: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    first = fetch_model(_recipe(path=str(tiny_model_dir)), tmp_path, cache_dir=cache)
    import builder.artifacts.hashing as hashing

    calls = []
    real = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda p: calls.append(p) or real(p))
    second = fetch_model(_recipe(path=str(tiny_model_dir)), tmp_path, cache_dir=cache)
    assert calls == [] and second.cached and second.digest == first.digest
    # touching one file (new mtime) re-hashes exactly that file
    cfg = tiny_model_dir / "config.json"
    st = cfg.stat()
    os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    third = fetch_model(_recipe(path=str(tiny_model_dir)), tmp_path, cache_dir=cache)
    assert [Path(p).name for p in calls] == ["config.json"] and not third.cached
    assert third.digest == first.digest  # same content, same digest


def test_symlink_escaping_the_folder_is_refused(tiny_model_dir: Path, tmp_path: Path):
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    (tiny_model_dir / "generation_config.json").symlink_to(outside)
    with pytest.raises(BuilderError, match="symlink points outside"):
        fetch_model(_recipe(path=str(tiny_model_dir)), tmp_path, cache_dir=tmp_path / "cache")


def test_symlink_inside_the_folder_is_resolved(tiny_model_dir: Path, tmp_path: Path):
    (tiny_model_dir / "weights").mkdir()
    os.replace(tiny_model_dir / "model.safetensors", tiny_model_dir / "weights" / "real.safetensors")
    (tiny_model_dir / "model.safetensors").symlink_to("weights/real.safetensors")
    art = fetch_model(_recipe(path=str(tiny_model_dir)), tmp_path, cache_dir=tmp_path / "cache")
    assert "model.safetensors" in {f.name for f in art.files}
    assert not (art.dir / "model.safetensors").is_symlink()


def test_pickles_only_without_safetensors(tmp_path: Path, capsys):
    folder = tmp_path / "m"
    make_tiny_model(folder, pickles=True, extras=False)
    art = fetch_model(_recipe(path="m"), tmp_path, cache_dir=tmp_path / "cache")
    assert "pytorch_model.bin" in {f.name for f in art.files}
    assert "executes code" in capsys.readouterr().err


def test_bin_left_out_when_safetensors_exist(tiny_model_dir: Path, tmp_path: Path):
    (tiny_model_dir / "pytorch_model.bin").write_bytes(b"x" * 10)
    art = fetch_model(_recipe(path=str(tiny_model_dir)), tmp_path, cache_dir=tmp_path / "cache")
    assert "pytorch_model.bin" not in {f.name for f in art.files}


def test_missing_folder_is_an_actionable_error(tmp_path: Path):
    with pytest.raises(BuilderError, match="no such folder"):
        fetch_model(_recipe(path="nope"), tmp_path, cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------- Hub (offline cache)
def _hub_cache(root: Path, repo: str, sha: str, model: Path, refs: dict[str, str]) -> None:
    """The huggingface_hub cache layout, by hand: blobs/<etag>, snapshots/<sha>/<name> -> blob, refs/<name>."""
    base = root / ("models--" + repo.replace("/", "--"))
    (base / "blobs").mkdir(parents=True, exist_ok=True)
    snap = base / "snapshots" / sha
    snap.mkdir(parents=True, exist_ok=True)
    for f in model.rglob("*"):
        if f.is_file():
            etag = _sha(f)
            (base / "blobs" / etag).write_bytes(f.read_bytes())
            dest = snap / f.relative_to(model)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(os.path.relpath(base / "blobs" / etag, dest.parent))
    (base / "refs").mkdir(exist_ok=True)
    for name, value in refs.items():
        (base / "refs" / name).write_text(value)


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch, tiny_model_dir: Path) -> Path:
    hub = tmp_path / "hf-hub"
    _hub_cache(hub, "acme/tiny-llama", SHA, tiny_model_dir, {"main": SHA})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(hub))
    return hub


def test_hub_branch_resolved_to_sha_and_cached(offline_hub: Path, tmp_path: Path, tiny_model_dir: Path):
    cache = tmp_path / "cache"
    art = fetch_model(_recipe(id="acme/tiny-llama", revision="main"), tmp_path, cache_dir=cache)
    assert art.revision == SHA and art.source == "hub:acme/tiny-llama" and not art.cached
    assert sorted(p.name for p in art.dir.iterdir()) == sorted(f.name for f in art.files)
    assert "README.md" not in {f.name for f in art.files}
    for f in art.files:
        assert (cache / "models" / "blobs" / "sha256" / f.sha256).is_file()
        assert f.sha256 == _sha(tiny_model_dir / f.name)
    # same content as the local folder: same digest (compile cache shared across sources)
    local = fetch_model(_recipe(path=str(tiny_model_dir)), tmp_path, cache_dir=cache)
    assert local.digest == art.digest
    # pinned sha + complete manifest: answered from our cache even with the HF cache gone
    import shutil

    shutil.rmtree(offline_hub)
    again = fetch_model(_recipe(id="acme/tiny-llama", revision=SHA), tmp_path, cache_dir=cache)
    assert again.cached and again.digest == art.digest and again.revision == SHA


def test_hub_not_in_offline_cache_is_clear(offline_hub: Path, tmp_path: Path):
    with pytest.raises(BuilderError, match="not in the local Hugging Face cache"):
        fetch_model(_recipe(id="acme/other", revision="main"), tmp_path, cache_dir=tmp_path / "cache")


def test_hub_token_only_from_env_and_never_recorded(offline_hub: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secretsecretsecret")
    cache = tmp_path / "cache"
    art = fetch_model(_recipe(id="acme/tiny-llama"), tmp_path, cache_dir=cache)
    assert "hf_secret" not in art.model_dump_json()
    for p in (cache / "models").rglob("*.json"):
        assert "hf_secret" not in p.read_text()


# --------------------------------------------------------------------------- S3 (moto)
@pytest.fixture
def s3_model(tiny_model_dir: Path, monkeypatch):
    from moto import mock_aws

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="models")
        for f in tiny_model_dir.rglob("*"):
            if f.is_file():
                s3.put_object(Bucket="models", Key="tiny/" + f.relative_to(tiny_model_dir).as_posix(),
                              Body=f.read_bytes())
        yield s3


def test_s3_fetch_verifies_and_caches(s3_model, tmp_path: Path, tiny_model_dir: Path):
    cache = tmp_path / "cache"
    art = fetch_model(_recipe(s3="s3://models/tiny"), tmp_path, cache_dir=cache)
    assert art.source == "s3://models/tiny/" and not art.cached
    assert {f.name: f.sha256 for f in art.files} == {n: _sha(tiny_model_dir / n) for n in
                                                     ["config.json", "model.safetensors", "special_tokens_map.json",
                                                      "tokenizer.json", "tokenizer_config.json"]}
    again = fetch_model(_recipe(s3="s3://models/tiny/"), tmp_path, cache_dir=cache)
    assert again.cached and again.digest == art.digest
    # a changed object (new ETag) is fetched again
    s3_model.put_object(Bucket="models", Key="tiny/config.json", Body=b'{"changed": true}')
    third = fetch_model(_recipe(s3="s3://models/tiny/"), tmp_path, cache_dir=cache)
    assert not third.cached and third.digest != art.digest


def test_s3_partial_download_is_resumed(s3_model, tmp_path: Path, tiny_model_dir: Path):
    from builder.artifacts import s3 as s3mod

    cache = ArtifactCache(tmp_path / "cache")
    body = (tiny_model_dir / "model.safetensors").read_bytes()
    etag = s3_model.head_object(Bucket="models", Key="tiny/model.safetensors")["ETag"].strip('"')
    part = cache.tmp / ("s3-" + hashlib.sha256(f"models/tiny/model.safetensors@{etag}".encode()).hexdigest()[:32]
                        + ".part")
    part.write_bytes(body[:1000])
    seen = []
    real_get = s3_model.get_object

    def spy(**kw):
        seen.append(kw.get("Range"))
        return real_get(**kw)

    s3_model.get_object = spy
    entry = s3mod._download(s3_model, cache, "models", "tiny/model.safetensors", "model.safetensors",
                            len(body), etag)
    assert seen == ["bytes=1000-"]
    assert entry.sha256 == hashlib.sha256(body).hexdigest() and not part.exists()


def test_s3_corrupt_partial_is_discarded(s3_model, tmp_path: Path, tiny_model_dir: Path):
    from builder.artifacts import s3 as s3mod

    cache = ArtifactCache(tmp_path / "cache")
    body = (tiny_model_dir / "config.json").read_bytes()
    etag = s3_model.head_object(Bucket="models", Key="tiny/config.json")["ETag"].strip('"')
    part = cache.tmp / ("s3-" + hashlib.sha256(f"models/tiny/config.json@{etag}".encode()).hexdigest()[:32]
                        + ".part")
    part.write_bytes(b"X" * 10)  # wrong prefix bytes: the md5 check must catch it
    with pytest.raises(BuilderError, match="does not match its ETag"):
        s3mod._download(s3_model, cache, "models", "tiny/config.json", "config.json", len(body), etag)
    assert not part.exists()


def test_s3_missing_prefix(s3_model, tmp_path: Path):
    with pytest.raises(BuilderError, match="no objects"):
        fetch_model(_recipe(s3="s3://models/absent/"), tmp_path, cache_dir=tmp_path / "cache")


def test_manifest_written_atomically_and_readable(tiny_model_dir: Path, tmp_path: Path, s3_model):
    cache = tmp_path / "cache"
    fetch_model(_recipe(s3="s3://models/tiny/"), tmp_path, cache_dir=cache)
    manifests = list((cache / "models" / "manifests").glob("*.json"))
    assert len(manifests) == 1 and json.loads(manifests[0].read_text())["source"] == "s3://models/tiny/"
    assert list((cache / "models" / "tmp").iterdir()) == []
