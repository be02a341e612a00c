"""--cache-remote / LMI_BUILD_CACHE_REMOTE: what is accepted, and the one-line refusals (no S3 needed)."""

from __future__ import annotations

import pytest

from builder.artifacts.remote import RemoteCache, RemoteFile, RemoteManifest, parse_uri, remote_from
from builder.cli import main
from builder.diagnostics import UsageError


@pytest.mark.parametrize("text, expected", [
    ("s3://my-bucket/lmi-cache/", ("my-bucket", "lmi-cache/")),
    ("s3://my-bucket/lmi-cache", ("my-bucket", "lmi-cache/")),
    ("s3://my.bucket.1", ("my.bucket.1", "")),
    ("s3://bkt/a/b/c/", ("bkt", "a/b/c/")),
])
def test_accepted_uris(text, expected):
    assert parse_uri(text) == expected


@pytest.mark.parametrize("text, message", [
    ("my-bucket/x", "give an s3:// URI"),
    ("s3://", "is not an S3 bucket name"),
    ("s3://ab/x", "is not an S3 bucket name"),
    ("s3://UPPER/x", "is not an S3 bucket name"),
    ("s3://a..b/x", "is not an S3 bucket name"),
    ("s3://bkt/a//b/", "empty, '.' or '..' segment"),
    ("s3://bkt/../b/", "empty, '.' or '..' segment"),
])
def test_refused_uris(text, message):
    with pytest.raises(ValueError, match=message):
        parse_uri(text)


def test_env_var_is_used_and_checked(monkeypatch):
    monkeypatch.delenv("LMI_BUILD_CACHE_REMOTE", raising=False)
    assert remote_from(None) is None
    monkeypatch.setenv("LMI_BUILD_CACHE_REMOTE", "  ")
    assert remote_from(None) is None  # blank is unset
    monkeypatch.setenv("LMI_BUILD_CACHE_REMOTE", "s3://fleet-cache/ci")
    r = remote_from(None)
    assert isinstance(r, RemoteCache) and r.uri == "s3://fleet-cache/ci/"
    assert remote_from("s3://other-bucket/p/").uri == "s3://other-bucket/p/"  # the flag wins
    monkeypatch.setenv("LMI_BUILD_CACHE_REMOTE", "gs://nope/x")
    with pytest.raises(UsageError, match="^LMI_BUILD_CACHE_REMOTE: 'gs://nope/x': give an s3:// URI"):
        remote_from(None)


def test_layout_keys():
    r = RemoteCache("s3://fleet-cache/ci/")
    assert r.blob_key("0" * 64) == "ci/blobs/sha256/" + "0" * 64
    assert r.manifest_key("compile", "ab" * 32) == "ci/compile/" + "ab" * 32 + ".json"
    name = r.manifest_key("models", "hub:org/name@" + "c" * 40)
    assert name.startswith("ci/models/") and name.endswith(".json") and "/" not in name[len("ci/models/"):]


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../b", "a//b", "./a", "", "a\\..\\b"])
def test_manifest_names_cannot_leave_the_entry(name):
    with pytest.raises(ValueError, match="unsafe file name"):
        RemoteFile(name=name, size=1, sha256="0" * 64)


def test_manifest_needs_real_digests():
    with pytest.raises(ValueError):
        RemoteFile(name="a", size=1, sha256="xyz")
    with pytest.raises(ValueError):
        RemoteFile(name="a", size=-1, sha256="0" * 64)
    with pytest.raises(ValueError):
        RemoteManifest.model_validate({"format": 2, "kind": "compile", "key": "k", "files": [], "created": 0})


@pytest.mark.parametrize("argv, message", [
    (["build", "recipe.yaml", "--cache-remote", "https://x/y"], "give an s3:// URI"),
    (["cache", "ls", "--cache-remote", "s3://NO/x"], "is not an S3 bucket name"),
    (["cache", "prune", "--cache-remote", "s3://ok-bucket/x/", "--older-than", "0"], "number of days > 0"),
])
def test_cli_refuses_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err
