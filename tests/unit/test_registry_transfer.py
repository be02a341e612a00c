"""Upload machinery of registry assembly without a real registry: worker count, the read-ahead
thread, skipping what the registry holds, the blob size known in advance, and the retry rules of
``resumable_upload`` (against the in-memory registry of test_registry_client_upload.py)."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from builder.assembly.layers import plan_layers
from builder.diagnostics import BuilderError
from builder.registry.client import RegistryClient
from builder.registry.layerblobs import LayerStream, StoredGzip
from builder.registry.transfer import Prefetch, Stopped, _skip, resumable_upload, upload_workers
from tests.unit.test_registry_client_upload import make_registry  # noqa: F401  (fixture)


def test_upload_workers_value_env_and_default():
    assert upload_workers(3, {}) == 3
    assert upload_workers(None, {"LMI_BUILD_UPLOAD_WORKERS": " 5 "}) == 5
    assert 2 <= upload_workers(None, {}) <= 8
    cores = os.cpu_count() or 2
    assert upload_workers(None, {}, loopback=True) == max(1, min(8, cores // 2))  # the registry needs cores too
    assert upload_workers(None, {}) == min(8, max(2, cores))
    assert upload_workers(None, {"LMI_BUILD_UPLOAD_WORKERS": "3"}, loopback=True) == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(BuilderError, match=r"LMI_BUILD_UPLOAD_WORKERS='.*': expected a whole number"):
            upload_workers(None, {"LMI_BUILD_UPLOAD_WORKERS": bad})


def test_prefetch_passes_items_and_the_readers_error():
    closed = []

    def source():
        try:
            yield b"a"
            yield b"b"
            raise OSError("disk gone")
        finally:
            closed.append(threading.current_thread().name)

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in Prefetch(source()):
            got.append(item)
    assert got == [b"a", b"b"]
    assert closed == ["layer-reader"]  # the source is closed in the reader thread, where it ran


def test_prefetch_stops_both_sides():
    stop = threading.Event()
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield b"x" * 1024
        finally:
            closed.set()

    p = Prefetch(endless(), stop)
    it = iter(p)
    assert next(it) == b"x" * 1024
    stop.set()
    with pytest.raises(Stopped):
        next(it)
    p.close()
    assert closed.wait(5)


def test_skip_drops_exactly_n_bytes():
    chunks = [b"abc", b"defg", b"h"]
    for n in range(0, 9):
        assert b"".join(_skip(chunks, n)) == b"abcdefgh"[n:]


def test_expected_size_is_the_streamed_size(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    for name, size in [("a" * 150 + ".bin", 0), ("model-00001.safetensors", 3_000_001), ("b.json", 65535),
                       ("c", 65535 * 3)]:
        (model / name).write_bytes(os.urandom(size))
    layers = plan_layers(model, None, {"serving.properties": b"engine=Python\n"}, split_threshold=1 << 20,
                         blob_dir=tmp_path / "b")
    for compression in ("gzip", "none"):
        for layer in layers:
            stream = LayerStream(layer, compression)
            assert sum(len(c) for c in stream) == stream.expected_size() == stream.result().size
    for n in (0, 1, 65534, 65535, 65536, 131070, 1_000_003):
        g = StoredGzip()
        assert len(g.compress(b"x" * n) + g.flush()) == StoredGzip.size_for(n)


class FlakyClient(RegistryClient):
    """Loses the connection in the middle of the first ``fail`` PATCHes (after some bytes went)."""

    def __init__(self, host: str, fail: int = 1, transient: bool = True):
        super().__init__(host, stage="test", part_size=None)
        self.fail, self.transient = fail, transient

    def upload_stream(self, location, chunks, *, state=None, size=None):
        if self.fail:
            self.fail -= 1
            next(iter(chunks))  # some bytes read and "sent"
            err = BuilderError("registry unreachable or connection lost during PATCH", stage="test")
            err.transient = self.transient  # type: ignore[attr-defined]
            raise err
        return super().upload_stream(location, chunks, state=state, size=size)


def _pieces(data: bytes, n: int = 100_000):
    return [data[i:i + n] for i in range(0, len(data), n)]


def test_a_lost_connection_without_a_session_to_resume_restarts_the_blob(make_registry, monkeypatch):  # noqa: F811
    monkeypatch.setattr("builder.registry.transfer.RESUME_BACKOFF_S", 0.01)
    reg = make_registry()  # answers GET on a session with 404: nothing to resume from
    data = os.urandom(1_000_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    done = resumable_upload(FlakyClient(reg.host), "r", lambda: _pieces(data), lambda: digest, size=len(data))
    assert done.restarted == 1 and done.resumed == 0
    assert reg.blobs[("r", digest)] == data
    assert reg.count("POST") == 2 and reg.count("DELETE") == 1  # the broken session cancelled, a new one


def test_a_non_transient_error_is_not_retried_and_cancels_the_session(make_registry):  # noqa: F811
    reg = make_registry()
    data = os.urandom(300_000)
    with pytest.raises(BuilderError, match="connection lost"):
        resumable_upload(FlakyClient(reg.host, transient=False), "r", lambda: _pieces(data),
                         lambda: "sha256:" + hashlib.sha256(data).hexdigest())
    assert reg.count("POST") == 1 and reg.count("DELETE") == 1 and not reg.blobs


def test_retries_are_bounded(make_registry, monkeypatch):  # noqa: F811
    monkeypatch.setattr("builder.registry.transfer.RESUME_BACKOFF_S", 0.01)
    reg = make_registry()
    data = os.urandom(300_000)
    with pytest.raises(BuilderError, match="connection lost"):
        resumable_upload(FlakyClient(reg.host, fail=10), "r", lambda: _pieces(data),
                         lambda: "sha256:" + hashlib.sha256(data).hexdigest(), attempts=3)
    assert reg.count("POST") == 3 and not reg.blobs


def test_stop_cancels_the_session(make_registry):  # noqa: F811
    reg = make_registry()
    stop = threading.Event()

    def chunks():
        yield b"x" * 1000
        stop.set()  # Ctrl-C arrives mid-stream
        while True:
            yield b"x" * 1000

    with pytest.raises(Stopped):
        resumable_upload(RegistryClient(reg.host, stage="test"), "r", chunks, lambda: "sha256:" + "0" * 64,
                         stop=stop)
    assert reg.count("DELETE") == 1 and not reg.blobs
