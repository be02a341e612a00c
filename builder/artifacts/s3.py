"""S3 prefixes through boto3: parallel, resumable downloads checked against size and ETag.

A partial download is kept under ``tmp/`` named by (bucket, key, ETag) and continued with a ``Range``
request; an object whose ETag changed starts over. Single-part ETags are the MD5 of the object and are
verified; multipart ETags (``<md5>-<parts>``) depend on the uploader's part size, so only the size is.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from builder.artifacts.cache import ArtifactCache
from builder.artifacts.manifests import cached_artifacts, commit_artifacts
from builder.artifacts.models import FileEntry, ModelArtifacts
from builder.artifacts.selection import select
from builder.console import step, warn
from builder.diagnostics import BuilderError

STAGE = "fetch"
WORKERS = 8
CHUNK = 8 << 20


def _split(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def fetch_s3(cache: ArtifactCache, uri: str, trust: bool, *, client=None) -> ModelArtifacts:
    from botocore.exceptions import BotoCoreError, ClientError

    from builder.registry.deadlines import s3_client

    bucket, prefix = _split(uri)
    source = f"s3://{bucket}/{prefix}"
    s3 = client or s3_client()  # bounded (LMI_BUILD_AWS_TIMEOUT_S, LMI_BUILD_AWS_ATTEMPTS), as publish
    try:
        listing = _list(s3, bucket, prefix)
    except (ClientError, BotoCoreError) as exc:
        raise BuilderError(f"{source}: cannot list objects: {exc}", stage=STAGE,
                           hint="check the prefix and the AWS credentials/region of this shell") from None
    if not listing:
        raise BuilderError(f"{source}: no objects under this prefix", stage=STAGE)
    chosen, warnings = select(listing, trust_remote_code=trust)
    for w in warnings:
        warn(f"{source}: {w}")
    etags = {n: listing[n][1] for n in chosen}
    key = f"{source}#" + hashlib.sha256(repr(sorted(etags.items())).encode()).hexdigest()[:16]
    hit = cached_artifacts(cache, key)  # same names and ETags as last time: nothing to download
    if hit:
        return hit
    with cache.locked():
        step(f"downloading {len(chosen)} objects from {source}")
        try:
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                files = list(pool.map(lambda n: _download(s3, cache, bucket, prefix + n, n, *listing[n]), chosen))
        except (ClientError, BotoCoreError) as exc:
            raise BuilderError(f"{source}: download failed: {exc}", stage=STAGE,
                               hint="run again: partial downloads are resumed") from None
        return commit_artifacts(cache, key, source, "s3", None, files, etags)


def _list(s3, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix):]
            if name and not name.endswith("/"):
                out[name] = (int(obj["Size"]), obj["ETag"].strip('"'))
    return out


def _download(s3, cache: ArtifactCache, bucket: str, key: str, name: str, size: int, etag: str) -> FileEntry:
    part = cache.tmp / ("s3-" + hashlib.sha256(f"{bucket}/{key}@{etag}".encode()).hexdigest()[:32] + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    if have < size:
        kwargs = {"Bucket": bucket, "Key": key, "IfMatch": f'"{etag}"'}
        if have:
            kwargs["Range"] = f"bytes={have}-"
        body = s3.get_object(**kwargs)["Body"]
        with open(part, "ab") as fh:
            while chunk := body.read(CHUNK):
                fh.write(chunk)
    return _verify_and_store(cache, part, name, size, etag)


def _verify_and_store(cache: ArtifactCache, part: Path, name: str, size: int, etag: str) -> FileEntry:
    actual = part.stat().st_size
    if actual != size:
        part.unlink(missing_ok=True)
        raise BuilderError(f"{name}: downloaded {actual} bytes, S3 lists {size}", stage=STAGE,
                           hint="the object changed during the download; run again")
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(part, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    if "-" not in etag and md5.hexdigest() != etag:
        part.unlink(missing_ok=True)
        raise BuilderError(f"{name}: content does not match its ETag (md5 {md5.hexdigest()} != {etag})",
                           stage=STAGE, hint="run again; the partial download was discarded")
    digest = sha.hexdigest()
    cache.put_blob(part, digest, move=True)
    return FileEntry(name=name, size=size, sha256=digest)
