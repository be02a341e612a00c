"""S3 behind the local caches: the fleet's shared compile cache and fetched-model cache.

``--cache-remote s3://bucket/prefix/`` (or ``LMI_BUILD_CACHE_REMOTE``) makes a runner look an entry up
in S3 before it compiles or fetches, and upload what it made. Layout under the prefix::

    blobs/sha256/<hex>       file contents named by their sha256 (written once, never changed)
    compile/<key>.json       compile entry manifest: files (name, size, sha256) + meta
    models/<name>.json       fetched-model manifest (name: sha256 of the source key, as locally)

**Atomic entries.** A writer uploads every blob first and the manifest last: the manifest's presence is
the entry's existence, so a reader racing a writer finds no manifest (a miss), never half an entry.
Blobs are content-addressed, so two runners finishing one key never overwrite each other's bytes: the
manifest is written with ``IfNoneMatch='*'`` (S3 conditional writes; moto supports it), the first one
stays and the second runner is told it lost the race. A server that refuses conditional writes
(``NotImplemented``) gets a plain PUT: the last manifest wins, and each manifest names only blobs its
writer uploaded, so either one is a whole entry. Readers trust a manifest only when every blob it lists
is there with the listed size and sha256 (object metadata), and check each file's sha256 while
downloading; a failure is a miss, never a partial local entry (the caller writes locally under a
temporary name and renames).

boto3's standard configuration applies (credential chain, ``AWS_PROFILE``, region, and
``AWS_ENDPOINT_URL_S3``); credentials are never logged or recorded: only the ``s3://`` URI is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, field_validator

from builder.artifacts.hashing import sha256_file  # one file hasher for cache, remote and S3
from builder.console import warn

ENV = "LMI_BUILD_CACHE_REMOTE"
WORKERS = 8  # bounded: parallel transfers per entry
CHUNK = 8 << 20
MULTIPART_THRESHOLD = 64 << 20
GRACE_S = 24 * 3600  # prune never removes an unreferenced blob younger than this: a writer may be mid-entry
TOUCH_AFTER_S = 24 * 3600  # a hit on an entry older than this refreshes its "last used" (LastModified)
HEX64 = re.compile(r"^[0-9a-f]{64}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
Kind = Literal["compile", "models"]


class RemoteError(Exception):
    """A remote entry that cannot be used (or an S3 failure): callers treat it as a miss."""


def parse_uri(text: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` -> (bucket, "prefix/"); ValueError with a one-line reason."""
    if not text.startswith("s3://"):
        raise ValueError(f"{text!r}: give an s3:// URI, e.g. s3://my-bucket/lmi-cache/")
    bucket, _, prefix = text[len("s3://"):].partition("/")
    if not BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"{text!r}: {bucket!r} is not an S3 bucket name (3-63 of a-z 0-9 . -)")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if "//" in prefix or any(part in (".", "..") for part in prefix.split("/")):
        raise ValueError(f"{text!r}: the prefix has an empty, '.' or '..' segment")
    return bucket, prefix


def remote_arg(text: str) -> str:
    """argparse ``type`` of ``--cache-remote``: the URI, checked now (exit 2, one line)."""
    import argparse

    try:
        bucket, prefix = parse_uri(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return f"s3://{bucket}/{prefix}"


def remote_from(explicit: str | None) -> RemoteCache | None:
    """``--cache-remote`` > ``LMI_BUILD_CACHE_REMOTE`` > none (an empty variable is unset)."""
    text = explicit or os.environ.get(ENV, "").strip()
    if not text:
        return None
    try:
        parse_uri(text)
    except ValueError as exc:
        from builder.diagnostics import UsageError

        source = "--cache-remote" if explicit else ENV
        raise UsageError(f"{source}: {exc}") from None
    return RemoteCache(text)


class RemoteFile(BaseModel):
    name: str  # POSIX path inside the entry
    size: int
    sha256: str

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        # a manifest is read from a shared bucket: it must never name a path outside the entry
        p = PurePosixPath(v)
        if not v or p.is_absolute() or any(part in ("..", ".", "") for part in v.split("/")) or "\\" in v:
            raise ValueError(f"unsafe file name {v!r}")
        return v

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not HEX64.match(v):
            raise ValueError("sha256 must be 64 lower-case hex digits")
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v: int) -> int:
        if v < 0:
            raise ValueError("negative size")
        return v


class RemoteManifest(BaseModel):
    format: Literal[1] = 1
    kind: Kind
    key: str
    files: list[RemoteFile]
    meta: dict[str, Any] = {}
    created: float


class RemoteItem(BaseModel):
    """One line of ``cache ls --cache-remote``."""

    kind: str  # "compile" | "model" | "blobs"
    name: str
    uri: str
    bytes: int
    last_used: float
    detail: str = ""


class Stats:
    """Bytes and objects moved (thread-safe): the build record and the benchmark report them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_down = self.bytes_up = self.objects_down = self.objects_up = 0

    def add(self, *, down: int = 0, up: int = 0) -> None:
        with self._lock:
            if down:
                self.bytes_down += down
                self.objects_down += 1
            if up:
                self.bytes_up += up
                self.objects_up += 1

    def as_dict(self) -> dict[str, int]:
        return {"bytes_down": self.bytes_down, "bytes_up": self.bytes_up, "objects_down": self.objects_down,
                "objects_up": self.objects_up}


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: the first problem, located
        e = errors()[0]
        return f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
    return str(exc).splitlines()[0]


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _status(exc: Exception) -> int:
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


class RemoteCache:
    def __init__(self, uri: str, client: Any = None):
        self.bucket, self.prefix = parse_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.prefix}"
        self._client = client
        self.stats = Stats()

    # ------------------------------------------------------------------ plumbing
    @property
    def s3(self) -> Any:
        if self._client is None:
            from builder.registry.deadlines import s3_client

            # bounded like every boto3 call (LMI_BUILD_AWS_TIMEOUT_S, LMI_BUILD_AWS_ATTEMPTS); a pool per worker
            self._client = s3_client(max_pool_connections=2 * WORKERS)
        return self._client

    def blob_key(self, sha: str) -> str:
        return f"{self.prefix}blobs/sha256/{sha}"

    def manifest_key(self, kind: Kind, key: str) -> str:
        name = key if kind == "compile" and HEX64.match(key) else hashlib.sha256(key.encode()).hexdigest()[:32]
        return f"{self.prefix}{kind}/{name}.json"

    def _errors(self) -> tuple[type[BaseException], ...]:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        return (ClientError, BotoCoreError, Boto3Error)  # Boto3Error: S3UploadFailedError of upload_file

    # -------------------------------------------------------------------- lookup
    def lookup(self, kind: Kind, key: str, *, now: float | None = None) -> RemoteManifest | None:
        """The entry for ``key`` when it is whole (manifest + every blob at its size and sha256), else None.
        S3 failures are warned about and answered None: the caller compiles or fetches as without a remote."""
        try:
            return self._lookup(kind, key, now=time.time() if now is None else now)
        except RemoteError as exc:
            warn(f"remote cache {self.uri}: {kind} entry {key[:16]} not used: {exc}")
            return None
        except self._errors() as exc:
            warn(f"remote cache {self.uri}: lookup failed ({exc}); going on without it")
            return None

    def _lookup(self, kind: Kind, key: str, *, now: float) -> RemoteManifest | None:
        mkey = self.manifest_key(kind, key)
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=mkey)
        except self._errors() as exc:
            if _code(exc) in ("NoSuchKey", "404") or _status(exc) == 404:
                return None
            raise
        body = obj["Body"].read()
        try:
            m = RemoteManifest.model_validate_json(body)
        except ValueError as exc:
            raise RemoteError(f"manifest {mkey} is not a valid entry ({_first_error(exc)})") from None
        if m.key != key or m.kind != kind:
            raise RemoteError(f"manifest {mkey} is for another key")
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            problems = [p for p in pool.map(self._check_blob, m.files) if p]
        if problems:
            raise RemoteError(problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
        modified = obj.get("LastModified")
        if modified is not None and now - modified.timestamp() > TOUCH_AFTER_S:
            self._touch(mkey, now)
        return m

    def _check_blob(self, f: RemoteFile) -> str | None:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=self.blob_key(f.sha256))
        except self._errors() as exc:
            if _status(exc) == 404 or _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return f"{f.name}: blob {f.sha256[:12]} is missing"
            raise
        if int(head.get("ContentLength", -1)) != f.size:
            return f"{f.name}: blob {f.sha256[:12]} has {head.get('ContentLength')} bytes, manifest says {f.size}"
        listed = (head.get("Metadata") or {}).get("sha256")
        if listed != f.sha256:
            return f"{f.name}: blob {f.sha256[:12]} carries sha256 {listed!r}"
        return None

    def _touch(self, mkey: str, now: float) -> None:
        """Refresh LastModified ("last used", read by prune): a copy onto itself. Best effort: a read-only
        runner may not be allowed to write, and that must not cost it the hit."""
        try:
            self.s3.copy_object(Bucket=self.bucket, Key=mkey, CopySource={"Bucket": self.bucket, "Key": mkey},
                                MetadataDirective="REPLACE", ContentType="application/json",
                                Metadata={"last-used": str(int(now))})
        except self._errors():
            pass

    # ------------------------------------------------------------------ download
    def download(self, m: RemoteManifest, target: Callable[[RemoteFile], Path],
                 skip: Callable[[RemoteFile], bool] = lambda f: False) -> list[tuple[RemoteFile, Path]]:
        """Every file of ``m`` (but those ``skip`` says are present) to ``target(f)``, in parallel, each
        checked against its size and sha256 while streaming. Raises RemoteError; a file that fails is
        removed, so the caller's temporary folder never passes for a complete one."""
        first: dict[str, tuple[RemoteFile, Path]] = {}  # sha256 -> the one download of that content
        copies: list[tuple[RemoteFile, Path]] = []
        for f in m.files:
            if skip(f):
                continue
            dest = target(f)
            if f.sha256 not in first:
                first[f.sha256] = (f, dest)
            elif dest != first[f.sha256][1]:
                copies.append((f, dest))  # two names, one content (e.g. rank engines): fetched once
        try:
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                got = list(pool.map(lambda item: (item[0], self._get(*item)), first.values()))
        except self._errors() as exc:
            raise RemoteError(f"download failed: {exc}") from None
        for f, dest in copies:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(first[f.sha256][1], dest)  # a copy: the runtime may not expect hard links
            got.append((f, dest))
        return got

    def _get(self, f: RemoteFile, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        body = self.s3.get_object(Bucket=self.bucket, Key=self.blob_key(f.sha256))["Body"]
        h, n = hashlib.sha256(), 0
        try:
            with open(dest, "wb") as fh:
                while chunk := body.read(CHUNK):
                    h.update(chunk)
                    n += len(chunk)
                    fh.write(chunk)
            if n != f.size or h.hexdigest() != f.sha256:
                raise RemoteError(f"{f.name}: downloaded {n} bytes with sha256 {h.hexdigest()[:12]}, "
                                  f"the manifest lists {f.size} bytes, {f.sha256[:12]}")
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        self.stats.add(down=n)
        return dest

    # -------------------------------------------------------------------- upload
    def publish(self, kind: Kind, key: str, files: Iterable[tuple[RemoteFile, Path]],
                meta: dict[str, Any] | None = None, *,
                replace: bool = False) -> Literal["uploaded", "present", "lost-race", "failed"]:
        """Upload an entry: blobs first (those already there are not sent again), the manifest last and
        only if none exists. ``replace``: the caller found the entry there unusable (its marker missing),
        so this one overwrites it. Never raises for S3 trouble (the build has its result already): warns."""
        pairs = list(files)
        unique = list({f.sha256: (f, path) for f, path in pairs}.values())  # one upload per content
        try:
            state = "broken" if replace else self._state(kind, key)
            if state == "whole":
                return "present"
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                list(pool.map(lambda fp: self._put_blob(*fp), unique))
            self._before_manifest()
            m = RemoteManifest(kind=kind, key=key, files=[f for f, _ in pairs], meta=meta or {}, created=time.time())
            return self._put_manifest(self.manifest_key(kind, key), m.model_dump_json(indent=1).encode(),
                                      conditional=state == "absent")
        except (RemoteError, *self._errors()) as exc:
            warn(f"remote cache {self.uri}: upload of {kind} entry {key[:16]} failed ({exc}); "
                 "the local entry is kept")
            return "failed"

    def _state(self, kind: Kind, key: str) -> Literal["whole", "absent", "broken"]:
        """A broken entry (a blob pruned under it, a bad manifest) is overwritten by this writer."""
        try:
            return "whole" if self._lookup(kind, key, now=time.time()) is not None else "absent"
        except RemoteError:
            return "broken"

    def _before_manifest(self) -> None:
        """Test hook: the moment between the last blob and the manifest."""

    def _put_blob(self, f: RemoteFile, path: Path) -> None:
        if self._check_blob(f) is None:
            return  # content-addressed: already there, same bytes
        from boto3.s3.transfer import TransferConfig

        # multipart above the threshold; the sha256 in metadata is what readers check before trusting it
        self.s3.upload_file(str(path), self.bucket, self.blob_key(f.sha256),
                            ExtraArgs={"Metadata": {"sha256": f.sha256}},
                            Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=4))
        self.stats.add(up=f.size)

    def _put_manifest(self, mkey: str, body: bytes, *, conditional: bool = True) -> Literal["uploaded", "lost-race"]:
        """``conditional``: only if no manifest exists (IfNoneMatch='*'); else (replacing a broken one) plain."""
        if conditional and not self._put_if_absent(mkey, body):
            if self._manifest_whole(mkey):
                return "lost-race"  # another runner's whole entry stands
            conditional = False  # a broken one appeared meanwhile: replace it with this whole entry
        if not conditional:
            self.s3.put_object(Bucket=self.bucket, Key=mkey, Body=body, ContentType="application/json")
        self.stats.add(up=len(body))
        return "uploaded"

    def _put_if_absent(self, mkey: str, body: bytes) -> bool:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=mkey, Body=body, ContentType="application/json",
                               IfNoneMatch="*")
            return True
        except self._errors() as exc:
            code = _code(exc)
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or _status(exc) in (409, 412):
                return False
            if code == "NotImplemented" or _status(exc) == 501:
                # no conditional writes on this endpoint: last manifest wins, and each is a whole entry
                self.s3.put_object(Bucket=self.bucket, Key=mkey, Body=body, ContentType="application/json")
                return True
            raise

    def _manifest_whole(self, mkey: str) -> bool:
        try:
            m = RemoteManifest.model_validate_json(self.s3.get_object(Bucket=self.bucket, Key=mkey)["Body"].read())
        except (ValueError, *self._errors()):
            return False
        return not any(self._check_blob(f) for f in m.files)

    # ------------------------------------------------------------------ ls/prune
    def _objects(self, sub: str) -> list[dict]:
        out: list[dict] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + sub):
            out.extend(page.get("Contents", []))
        return out

    def _read(self, key: str) -> RemoteManifest | None:
        try:
            return RemoteManifest.model_validate_json(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ValueError:
            return None
        except self._errors() as exc:
            if _status(exc) == 404:
                return None
            raise

    def items(self) -> list[RemoteItem]:
        items: list[RemoteItem] = []
        for kind in ("compile", "models"):
            for obj in self._objects(f"{kind}/"):
                m = self._read(obj["Key"])
                uri = f"s3://{self.bucket}/{obj['Key']}"
                when = obj["LastModified"].timestamp()
                if m is None:
                    items.append(RemoteItem(kind="invalid", name=obj["Key"].rsplit("/", 1)[-1], uri=uri, bytes=0,
                                            last_used=when, detail="not a valid manifest: never used"))
                    continue
                meta = m.meta
                if kind == "compile":
                    detail = (f"{meta.get('family', '?')} {meta.get('version', '?')} {meta.get('arch', '?')} "
                              f"tp={meta.get('tensor_parallel_degree', '?')}")
                    name = m.key[:12]
                else:
                    detail = str(meta.get("digest", ""))[:19]
                    name = str(meta.get("source", m.key)) + (f"@{str(meta['revision'])[:12]}"
                                                             if meta.get("revision") else "")
                items.append(RemoteItem(kind="compile" if kind == "compile" else "model", name=name, uri=uri,
                                        bytes=sum(f.size for f in m.files), last_used=when, detail=detail))
        blobs = self._objects("blobs/sha256/")
        if blobs:
            items.append(RemoteItem(kind="blobs", name=f"{len(blobs)} blobs", uri=f"{self.uri}blobs/sha256/",
                                    bytes=sum(int(b["Size"]) for b in blobs),
                                    last_used=max(b["LastModified"].timestamp() for b in blobs),
                                    detail="content shared by the entries above"))
        return items

    def prune(self, *, older_than_days: float | None, dry_run: bool, now: float | None = None) -> list[RemoteItem]:
        """Remove manifests not used for ``older_than_days`` (None: keep all; unreadable ones past the grace
        period always go), then every blob no remaining manifest lists that is older than the grace
        period (a younger one may belong to an entry whose manifest is still being written)."""
        now = time.time() if now is None else now
        removed: list[RemoteItem] = []
        referenced: set[str] = set()
        for kind in ("compile", "models"):
            for obj in self._objects(f"{kind}/"):
                age = now - obj["LastModified"].timestamp()
                m = self._read(obj["Key"])
                uri = f"s3://{self.bucket}/{obj['Key']}"
                old = older_than_days is not None and age > older_than_days * 86400
                if m is None and age > GRACE_S or m is not None and old:
                    removed.append(RemoteItem(kind="compile" if kind == "compile" else "model",
                                              name=(m.key[:12] if kind == "compile" else str(m.meta.get("source", m.key)))
                                              if m else obj["Key"].rsplit("/", 1)[-1], uri=uri,
                                              bytes=sum(f.size for f in m.files) if m else int(obj["Size"]),
                                              last_used=obj["LastModified"].timestamp()))
                elif m is not None:
                    referenced.update(f.sha256 for f in m.files)
        for obj in self._objects("blobs/sha256/"):
            sha = obj["Key"].rsplit("/", 1)[-1]
            if sha not in referenced and now - obj["LastModified"].timestamp() > GRACE_S:
                removed.append(RemoteItem(kind="blob", name=sha[:12], uri=f"s3://{self.bucket}/{obj['Key']}",
                                          bytes=int(obj["Size"]), last_used=obj["LastModified"].timestamp()))
        if not dry_run:
            keys = [i.uri[len(f"s3://{self.bucket}/"):] for i in removed]
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in
                                                                               keys[start:start + 1000]],
                                                                   "Quiet": True})
        return removed


def entry_files(folder: Path) -> list[tuple[RemoteFile, Path]]:
    """Every regular file under ``folder`` with its sha256 (a compile entry: meta.json + out/**)."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out.append((RemoteFile(name=p.relative_to(folder).as_posix(), size=p.stat().st_size,
                                   sha256=sha256_file(p)), p))
    return out


def manifest_meta(meta_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ----------------------------------------------------------------------------- the two caches' hooks
def model_from_remote(cache: Any, key: str) -> Any:
    """A fetched-model entry from the remote into the local ``ArtifactCache``: blobs not here already are
    downloaded in parallel, each stored with the local cache's own atomic ``put_blob``; the local manifest
    is written last (under the local lock), so an interrupted download leaves no local entry."""
    from builder.artifacts.cache import Manifest
    from builder.artifacts.models import FileEntry

    remote: RemoteCache = cache.remote
    m = remote.lookup("models", key)
    if m is None:
        return None
    try:
        local = Manifest.model_validate({**m.meta, "key": key, "files": [f.model_dump() for f in m.files]})
    except ValueError as exc:
        warn(f"remote cache {remote.uri}: model entry for {key} not used: {_first_error(exc)}")
        return None
    run = f"{os.getpid()}.{threading.get_ident()}"
    with cache.locked():
        try:
            got = remote.download(m, lambda f: cache.tmp / f"remote-{f.sha256}.{run}.part",
                                  skip=lambda f: cache.has_blob(FileEntry(**f.model_dump())))
            for f, part in got:
                cache.put_blob(part, f.sha256, move=True)
        except RemoteError as exc:
            warn(f"remote cache {remote.uri}: model entry for {key} not used: {exc}")
            return None
        finally:  # whatever did not make it into blobs/ (a failure or Ctrl-C half way)
            for part in cache.tmp.glob(f"remote-*.{run}.part"):
                part.unlink(missing_ok=True)
        if not all(cache.has_blob(f) for f in local.files):
            return None
        cache.write_manifest(local, publish=False)
    local.origin = "remote"
    return local


def model_to_remote(cache: Any, m: Any) -> str:
    """Upload a model entry just written locally (its blobs, then its manifest)."""
    remote: RemoteCache = cache.remote
    files = [(RemoteFile(name=f.name, size=f.size, sha256=f.sha256), cache.blob(f.sha256)) for f in m.files]
    meta = m.model_dump(mode="json", exclude={"files", "key", "origin"})
    return remote.publish("models", m.key, files, meta=meta)


def compile_from_remote(remote: RemoteCache, key: str, tmp: Path, final: Path) -> bool:
    """A compile entry from the remote into ``final``: downloaded under ``tmp`` and renamed into place
    whole (the caller holds the compile lock and checks the marker after)."""
    m = remote.lookup("compile", key)
    if m is None:
        return False
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        remote.download(m, lambda f: tmp / f.name)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except RemoteError as exc:
        warn(f"remote cache {remote.uri}: compile entry {key[:12]} not used: {exc}")
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def compile_to_remote(remote: RemoteCache, key: str, final: Path, *, replace: bool = False) -> str:
    return remote.publish("compile", key, entry_files(final), meta=manifest_meta(final / "meta.json"),
                          replace=replace)
