"""Interrupted, parallel and stopped uploads of registry assembly (issue 17 item 5).

* a connection reset mid-layer against distribution v3 (which keeps an interrupted session and
  says where it stands) resumes in the same session and sends fewer bytes than a full re-send;
* Debian's distribution 2.8 restarted mid-upload forgets the session: that layer starts again;
* several layers upload at once: a proxy sees overlapping upload requests;
* Ctrl-C (SIGINT to the main thread) mid-upload: no manifest, no tag, no half layer remembered,
  no upload thread left, and a re-run completes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import signal
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest

from builder.assembly.layers import MIN_OWN_LAYERS, LayerLimitError
from builder.registry.client import DOCKER_MANIFEST, RegistryClient
from builder.registry.layerblobs import LayerBlob
from tests.integration.test_assemble_registry import _assemble, fetch_image, make_model, push_base
from tests.support.registry_fixtures import FaultProxy, free_port

pytestmark = pytest.mark.registry

MB = 1_000_000


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _weights(res):
    return [layer for layer in res.layers if layer.kind == "weights" and layer.size > MB]


def _no_upload_threads(deadline_s: float = 10.0) -> list[str]:
    end = time.monotonic() + deadline_s
    while True:
        left = [t.name for t in threading.enumerate() if t.name.startswith(("lmi-upload", "layer-reader"))]
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.05)


@pytest.mark.parametrize("part_mib", [None, "5"])
def test_connection_reset_mid_layer_resumes_in_the_session(v3_registry, tmp_path, capsys, monkeypatch, part_mib):
    """distribution v3 keeps what arrived before the reset (GET on the session answers its Range):
    the upload goes on from there, in the same session, with one streamed PATCH or in 5 MiB parts
    (the cut lands inside the second part); the image is the one an unbroken run makes."""
    if part_mib:
        monkeypatch.setenv("LMI_BUILD_UPLOAD_PART_MIB", part_mib)
    else:
        monkeypatch.delenv("LMI_BUILD_UPLOAD_PART_MIB", raising=False)
    proxy = FaultProxy(v3_registry.port)
    try:
        repo_base = f"resume/base-{part_mib or 'one'}"
        base = push_base(v3_registry.host, repo_base).replace(v3_registry.host, proxy.host)
        model = make_model(tmp_path / "model", shards=1, size=12 * MB)
        proxy.cut_after(b"PATCH ", 6 * MB)  # mid-way through the one large layer's PATCH
        res = _assemble(proxy.host, tmp_path, base, model, tmp_path / "cache", split_threshold=MB, workers=1)
        assert proxy.fired == ["cut"]
        (shard,) = _weights(res)
        assert shard.resumed == 1 and shard.restarted == 0, shard
        # resumed: what the registry holds (about the 6 MB before the cut) is not sent again; the
        # second try sends only the rest, and the registry's PUT ?digest= check passed on the whole
        err = capsys.readouterr().err
        have = int(re.search(r"resuming at ([\d,]+) B", err).group(1).replace(",", ""))
        assert 1 * MB <= have <= 6 * MB, err
        first_try = shard.bytes_uploaded - (shard.size - have)  # what the broken try handed over
        assert first_try >= have, (first_try, have)  # the registry cannot hold more than was sent
        # the same image as an unbroken run (fresh cache, so every layer is read and sent again)
        again = _assemble(proxy.host, tmp_path, base, model, tmp_path / "cache-2", split_threshold=MB, workers=1)
        assert again.digest == res.digest
        assert _weights(again)[0].bytes_uploaded == shard.size
        _, _, files = fetch_image(v3_registry.host, res.reference.replace(proxy.host, v3_registry.host))
        name = "opt/ml/model/" + next(model.glob("*.safetensors")).name
        assert files[name][2] == _sha(next(model.glob("*.safetensors")))
    finally:
        proxy.close()


def test_registry_restarted_mid_upload_restarts_that_layer(restartable_registry, fault_proxy, tmp_path, capsys):
    """Debian's distribution 2.8 drops a session whose data outgrew its state token (measured): after
    the restart that layer starts again in a new session, and the build completes in the same run."""
    proxy = fault_proxy(throttle_bps=4 * MB)
    base = push_base(restartable_registry.host, "base/restart").replace(restartable_registry.host, proxy.host)
    model = make_model(tmp_path / "model", shards=1, size=8 * MB)

    def restart() -> None:
        assert proxy.upload_started.wait(30)
        time.sleep(0.5)
        restartable_registry.stop()
        restartable_registry.start()

    t = threading.Thread(target=restart, daemon=True)
    t.start()
    res = _assemble(proxy.host, tmp_path, base, model, tmp_path / "cache", split_threshold=MB, workers=1)
    t.join()
    (shard,) = _weights(res)
    assert shard.restarted >= 1 and shard.resumed == 0, shard
    assert "starting it again" in capsys.readouterr().err
    _, _, files = fetch_image(restartable_registry.host, res.reference.replace(proxy.host, restartable_registry.host))
    shard_file = next(model.glob("*.safetensors"))
    assert files["opt/ml/model/" + shard_file.name][2] == _sha(shard_file)


class OverlapProxy:
    """TCP proxy that counts blob-upload requests in flight (request line seen, answer not yet)."""

    def __init__(self, target_port: int, throttle_bps: int):
        self.target_port, self.throttle_bps = target_port, throttle_bps
        self.port = free_port()
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._srv = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._srv.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            state = {"uploading": False}
            threading.Thread(target=self._up, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, state), daemon=True).start()

    def _up(self, src, dst, state) -> None:
        try:
            while data := src.recv(65536):
                if b"/blobs/uploads/" in data and (b"PATCH " in data or b"PUT " in data):
                    with self._lock:
                        if not state["uploading"]:
                            state["uploading"] = True
                            self.active += 1
                            self.max_active = max(self.max_active, self.active)
                dst.sendall(data)
                time.sleep(len(data) / self.throttle_bps)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()

    def _down(self, src, dst, state) -> None:
        try:
            while data := src.recv(65536):
                if data.startswith(b"HTTP/1.1 "):
                    with self._lock:
                        if state["uploading"]:
                            state["uploading"] = False
                            self.active -= 1
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()


@pytest.mark.parametrize("workers", [1, 3])
def test_layers_upload_in_parallel(local_registry, tmp_path, workers):
    """With ``workers`` layers at once the proxy sees that many uploads in flight; with 1, never two."""
    proxy = OverlapProxy(local_registry.port, throttle_bps=8 * MB)
    try:
        base = push_base(local_registry.host, f"base/par-{workers}").replace(local_registry.host, proxy.host)
        model = make_model(tmp_path / "model", shards=3, size=3 * MB)
        res = assemble_to(proxy.host, f"par/{workers}", tmp_path, base, model, workers=workers)
        assert len(_weights(res)) == 3 and all(x.uploaded for x in _weights(res))
        assert proxy.max_active == workers
    finally:
        proxy.close()


def assemble_to(host: str, repo: str, tmp: Path, base: str, model: Path, **kw):
    from builder.assembly import AssemblyRequest
    from builder.registry.assemble import assemble
    from tests.integration.test_assemble_registry import make_resolved

    return assemble(AssemblyRequest(resolved=make_resolved(tmp), registry=f"{host}/{repo}", base_image=base,
                                    model_dir=model, cache_dir=kw.pop("cache", tmp / "cache"), split_threshold=MB,
                                    **kw))


def test_ctrl_c_mid_upload_leaves_no_manifest_and_no_half_layer(restartable_registry, fault_proxy, tmp_path):
    proxy = fault_proxy(throttle_bps=4 * MB)
    reg = restartable_registry
    base = push_base(reg.host, "base/int").replace(reg.host, proxy.host)
    model = make_model(tmp_path / "model", shards=3, size=6 * MB)
    cache = tmp_path / "cache"

    def ctrl_c() -> None:
        assert proxy.upload_started.wait(30)
        time.sleep(0.6)  # the small layers are done by now, the shards are mid-way
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    t = threading.Thread(target=ctrl_c, daemon=True)
    t.start()
    with pytest.raises(KeyboardInterrupt):
        assemble_to(proxy.host, "int/repo", tmp_path, base, model, workers=2, cache=cache)
    t.join()
    assert _no_upload_threads() == []
    repo_dir = reg.root / "data" / "docker" / "registry" / "v2" / "repositories" / "int" / "repo"
    revisions = repo_dir / "_manifests" / "revisions"  # where distribution keeps a repository's manifests
    assert not revisions.exists() or not any(revisions.rglob("link")), "a manifest was stored"
    client = RegistryClient(reg.host)
    assert client.request("GET", "/v2/int/repo/tags/list").json().get("tags") in (None, [])
    # every remembered layer is complete in the registry; the interrupted shards are not remembered
    memo = [LayerBlob.model_validate_json(p.read_text()) for p in (cache / "registry" / "layers").glob("*.json")]
    for blob in memo:
        assert client.blob_size("int/repo", blob.digest) == blob.size
    assert len(memo) < 5, "all three shards finished before the interrupt: the test proved nothing"
    # every session not finished was cancelled (DELETE). Debian's 2.8 answers 404 to it when the data
    # outgrew the session's state token, and its upload purging removes the files later
    log = reg.access_lines()
    started = reg.blob_uploads(repo="int/repo")
    finished = sum(1 for line in log if '"PUT /v2/int/repo/blobs/uploads/' in line and '" 201 ' in line)
    cancelled = sum(1 for line in log if '"DELETE /v2/int/repo/blobs/uploads/' in line)
    assert cancelled >= 1 and cancelled == started - finished, (started, finished, cancelled)
    # a re-run completes, skipping what was finished
    res = assemble_to(proxy.host, "int/repo", tmp_path, base, model, workers=2, cache=cache)
    assert sum(1 for x in res.layers if x.skipped and x.kind != "base") == len(memo)
    _, _, files = fetch_image(reg.host, res.reference.replace(proxy.host, reg.host))
    for shard in model.glob("*.safetensors"):
        assert files["opt/ml/model/" + shard.name][2] == _sha(shard)


def _push_deep_base(host: str, repo: str, n: int) -> str:
    """A base whose manifest lists ``n`` layers (the same small gzip layer n times)."""
    client = RegistryClient(host, stage="test")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/deep")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"deep\n"))
    blob = gzip.compress(raw.getvalue(), mtime=0)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    client.upload_bytes(repo, digest, blob)
    diff = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [diff] * n}}).encode()
    cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    client.upload_bytes(repo, cfg_digest, cfg)
    layer = {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": digest, "size": len(blob)}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                      "digest": cfg_digest, "size": len(cfg)},
                           "layers": [layer] * n}).encode()
    return f"{host}/{repo}@{client.put_manifest(repo, 'deep', manifest, DOCKER_MANIFEST)}"


def test_layer_plan_counts_the_base_layers(local_registry, tmp_path):
    """The plan is told the base's layer count (helper F's budget, builder/assembly/layers.py): on a
    118-layer base ours are held to MIN_OWN_LAYERS (8), where an unknown base would allow 60 and the
    plan would make 10 (8 shards, small files, config); on a 125-layer base the build is refused."""
    model = make_model(tmp_path / "model", shards=8, size=2 * MB)
    base = _push_deep_base(local_registry.host, "base/deep118", 118)
    res = assemble_to(local_registry.host, "deep/ok", tmp_path, base, model, workers=2)
    ours = [x for x in res.layers if x.kind != "base"]
    assert len(res.layers) - len(ours) == 118
    assert len(ours) <= MIN_OWN_LAYERS < 8 + 2
    too_deep = _push_deep_base(local_registry.host, "base/deep125", 125)
    with pytest.raises(LayerLimitError):
        assemble_to(local_registry.host, "deep/no", tmp_path, too_deep, model, cache=tmp_path / "c2")
