"""Registry fixtures: Debian's ``docker-registry`` on 127.0.0.1, moto for the ECR control plane, a
fault-injecting TCP proxy, and small labelled test images made without pulling anything.

Rules followed (reference/containers-and-registries.md §5, §6, §11): our own config file on a free
loopback port with ``http.secret`` set, readiness poll under a deadline that also watches the
process, terminate in teardown, skip with a reason when the binary is missing; moto only ever
receives ECR API calls, never image bytes.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from builder.smoke.container import free_port  # the one free-port helper (benches import it from here)

REGISTRY_EXE = "/usr/bin/docker-registry"
T = TypeVar("T")
TEST_LABEL = "dev.lmi-builder.test.publish"


def _registry_missing() -> str | None:
    if not (os.path.exists(REGISTRY_EXE) or shutil.which("docker-registry")):
        return "Debian docker-registry is not installed (apt-get install docker-registry)"
    return None


@dataclass
class LocalRegistry:
    """One ``docker-registry serve`` process; can be stopped and restarted on the same port/data."""

    root: Path
    port: int
    username: str | None = None
    password: str | None = None
    exe: str = REGISTRY_EXE  # another implementation with the same config format (distribution v3)
    proc: subprocess.Popen | None = None
    _log: object | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    def write_config(self) -> Path:
        auth = ""
        if self.username is not None:
            line = subprocess.run(["htpasswd", "-Bbn", self.username, self.password or ""],
                                  check=True, capture_output=True, text=True).stdout.strip()
            (self.root / "htpasswd").write_text(line + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {self.root / 'htpasswd'}\n"
        cfg = self.root / "config.yml"
        # access log on: tests count blob uploads in it (§5.4)
        cfg.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            "  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: test-only-{uuid.uuid4().hex}\n"
            "health:\n  storagedriver:\n    enabled: false\n" + auth
        )
        return cfg

    def start(self, deadline_s: float = 10.0) -> None:
        import requests

        if self.proc is not None and self.proc.poll() is None:
            # a second process on the port would answer nothing, and stop() would no longer reach the first
            raise RuntimeError(f"the registry on {self.host} is running already (pid {self.proc.pid})")
        cfg = self.root / "config.yml"
        if not cfg.exists():
            self.write_config()
        self._log = open(self.log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen([self.exe, "serve", str(cfg)], stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        end = time.monotonic() + deadline_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited ({self.proc.returncode}): "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                r = requests.get(f"http://{self.host}/v2/", timeout=1)
                if r.status_code in (200, 401):
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"docker-registry on {self.host} not ready after {deadline_s}s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- access-log helpers -------------------------------------------------------------
    def log_mark(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def access_lines(self, since: int = 0) -> list[str]:
        with open(self.log_path, "rb") as fh:
            fh.seek(since)
            return fh.read().decode(errors="replace").splitlines()

    def blob_uploads(self, since: int = 0, repo: str | None = None) -> int:
        """Started blob uploads (``POST /v2/<name>/blobs/uploads/``) answered 202 (new upload)."""
        name = re.escape(repo) if repo else r"[^ ]+"
        pat = re.compile(rf'"POST /v2/{name}/blobs/uploads/[^ ]* HTTP/[0-9.]+" 202 ')
        return sum(1 for line in self.access_lines(since) if pat.search(line))


@contextmanager
def serving_registry(root: Path, *, missing: str | None = None, **kw) -> Iterator[LocalRegistry]:
    """A registry in ``root`` on a free port, started, and stopped when the block ends; the set-up every
    registry fixture shares. ``missing``: why it cannot run here (the caller's check), a skip."""
    if missing:
        pytest.skip(missing)
    root.mkdir(parents=True, exist_ok=True)
    reg = LocalRegistry(root=root, port=free_port(), **kw)
    reg.write_config()
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory) -> Iterator[LocalRegistry]:
    """A plain (no auth) registry for the whole run; yields the object, ``.host`` is 127.0.0.1:PORT."""
    with serving_registry(tmp_path_factory.mktemp("registry"), missing=_registry_missing()) as reg:
        yield reg


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory) -> Iterator[LocalRegistry]:
    """An htpasswd (bcrypt, ``htpasswd -Bbn``) registry; ``.username`` / ``.password`` are valid."""
    missing = _registry_missing() or (None if shutil.which("htpasswd") else
                                      "htpasswd missing (apt-get install apache2-utils)")
    with serving_registry(tmp_path_factory.mktemp("registry-auth"), missing=missing, username="tester",
                          password=f"pw-{uuid.uuid4().hex[:16]}") as reg:
        yield reg


@pytest.fixture
def restartable_registry(tmp_path) -> Iterator[LocalRegistry]:
    """A registry of this test's own, so that the test may ``stop()`` / ``restart()`` it."""
    with serving_registry(tmp_path / "reg", missing=_registry_missing()) as reg:
        yield reg


def closing_factory(build: Callable[..., T]) -> Iterator[Callable[..., T]]:
    """Yield ``build`` as a factory and ``close()`` everything it made once the test is over: the shape of
    the ECR-front and fault-proxy fixtures (a generator for a fixture to ``yield from``)."""
    made: list = []

    def make(*args, **kwargs) -> T:
        made.append(build(*args, **kwargs))
        return made[-1]

    try:
        yield make
    finally:
        for thing in made:
            thing.close()


# --- an ECR-like front, and a second registry implementation ------------------------------------


@pytest.fixture
def ecr_front(local_registry) -> Iterator[Callable[..., object]]:
    """Factory ``ecr_front(registry=None, **kw) -> EcrFront`` (tests/equipment/ecr_front.py) in front
    of ``registry`` (default: the session's plain ``local_registry``); closed in teardown."""
    from tests.equipment.ecr_front import EcrFront

    def front(registry: LocalRegistry | None = None, **kw) -> EcrFront:
        reg = registry or local_registry
        return EcrFront(reg.port, reg.root / "data", **kw)

    yield from closing_factory(front)


DISTRIBUTION_V3 = "github.com/distribution/distribution/v3/cmd/registry@v3.0.0"
BIN_CACHE = Path.home() / ".cache" / "lmi-build-tests" / "bin"


def _go() -> str | None:
    return shutil.which("go") or next((p for p in ("/usr/local/go/bin/go",) if os.path.exists(p)), None)


def distribution_v3_exe() -> str:
    """Build distribution v3's registry once with ``go install`` (cached under
    ``~/.cache/lmi-build-tests/bin/registry-v3.0.0``); skip with the reason when it cannot be."""
    exe = BIN_CACHE / "registry-v3.0.0"
    if exe.exists():
        return str(exe)
    go = _go()
    if go is None:
        pytest.skip("go is not installed: cannot build distribution v3 (apt-get install golang, or /usr/local/go)")
    from filelock import FileLock

    BIN_CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(BIN_CACHE / ".registry-v3.lock")):
        if exe.exists():
            return str(exe)
        with tempfile.TemporaryDirectory(prefix="gobin-", dir=BIN_CACHE) as gobin:
            env = {**os.environ, "GOBIN": gobin, "GOFLAGS": "-buildvcs=false"}
            try:
                proc = subprocess.run([go, "install", DISTRIBUTION_V3], env=env, capture_output=True,
                                      text=True, timeout=900)
            except subprocess.TimeoutExpired:
                pytest.skip(f"go install {DISTRIBUTION_V3} took more than 15 min")
            if proc.returncode != 0:
                pytest.skip(f"go install {DISTRIBUTION_V3} failed: {proc.stderr.strip()[-300:]}")
            os.replace(Path(gobin) / "registry", exe)  # atomic: never a half-written binary
    return str(exe)


@pytest.fixture(scope="session")
def v3_registry(tmp_path_factory) -> Iterator[LocalRegistry]:
    """distribution v3.0.0 (built from the Go module proxy) on 127.0.0.1, plain, for the whole run."""
    exe = distribution_v3_exe()
    with serving_registry(tmp_path_factory.mktemp("registry-v3"), exe=exe) as reg:
        yield reg


# --- fault-injecting TCP proxy ----------------------------------------------------------------


class FaultProxy:
    """Loopback TCP proxy in front of a registry. Faults fire once each, in order of arming:

    * ``cut_after(marker, nbytes)``: once a client->server stream has carried ``marker`` and then
      ``nbytes`` more bytes, both sockets are closed (a push cut off mid-upload).
    * ``fail_with(marker, status)``: the first request whose bytes contain ``marker`` is answered
      with ``status`` and the connection closed (e.g. a 503 on the manifest PUT).
    ``throttle_bps`` slows client->server traffic so that a few-MB upload takes seconds.
    """

    def __init__(self, target_port: int, throttle_bps: int | None = None):
        self.target_port = target_port
        self.throttle_bps = throttle_bps
        self.port = free_port()
        self._faults: list[dict] = []
        self._lock = threading.Lock()
        self.fired: list[str] = []
        self.upload_started = threading.Event()
        self._srv = socket.create_server(("127.0.0.1", self.port))
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut_after(self, marker: bytes, nbytes: int) -> None:
        self._faults.append({"kind": "cut", "marker": marker, "n": nbytes})

    def fail_with(self, marker: bytes, status: int) -> None:
        self._faults.append({"kind": "fail", "marker": marker, "status": status})

    def close(self) -> None:
        self._stop = True
        self._srv.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump_up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(upstream, client), daemon=True).start()

    def _pump_down(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src, dst)

    def _pump_up(self, src: socket.socket, dst: socket.socket) -> None:
        armed: dict | None = None
        counted = 0
        try:
            while data := src.recv(16384):
                if b"/blobs/uploads/" in data and (b"PATCH " in data or b"PUT " in data):
                    self.upload_started.set()
                with self._lock:
                    if armed is None and self._faults and self._faults[0]["marker"] in data:
                        armed = self._faults.pop(0)
                        self.fired.append(armed["kind"])
                if armed is not None and armed["kind"] == "fail":
                    body = b"proxy: injected failure"
                    src.sendall(b"HTTP/1.1 %d Injected\r\nContent-Length: %d\r\nConnection: close\r\n"
                                b"Content-Type: text/plain\r\n\r\n%s" % (armed["status"], len(body), body))
                    return
                if armed is not None and armed["kind"] == "cut":
                    counted += len(data)
                    if counted >= armed["n"]:
                        return
                dst.sendall(data)
                if self.throttle_bps:
                    time.sleep(len(data) / self.throttle_bps)
        except OSError:
            pass
        finally:
            _close(src, dst)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


@pytest.fixture
def fault_proxy(restartable_registry) -> Iterator[Callable[..., FaultProxy]]:
    """Factory: ``fault_proxy(throttle_bps=None)`` -> FaultProxy in front of ``restartable_registry``."""
    yield from closing_factory(lambda throttle_bps=None: FaultProxy(restartable_registry.port,
                                                                    throttle_bps=throttle_bps))


# --- moto ECR ------------------------------------------------------------------------------


@pytest.fixture
def ecr_mock(monkeypatch) -> Iterator[object]:
    """In-process moto for the ECR control plane (fake credentials, us-west-2); yields a boto3 client."""
    moto = pytest.importorskip("moto")
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-west-2"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"):
        monkeypatch.delenv(key, raising=False)
    with moto.mock_aws():
        yield boto3.client("ecr", region_name="us-west-2")


@pytest.fixture
def moto_ecr_server(monkeypatch) -> Iterator[str]:
    """``moto_server`` on 127.0.0.1 for cross-process tests (CLI in a child process); sets
    ``AWS_ENDPOINT_URL_ECR`` and fake credentials; yields the endpoint URL."""
    proc, url = start_moto_server()
    try:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-west-2", "AWS_ENDPOINT_URL_ECR": url}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield url
    finally:
        stop_process(proc)


# --- small labelled images -------------------------------------------------------------------


@pytest.fixture(scope="session")
def publish_docker() -> object:
    """A Docker SDK client, or skip when no engine answers."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # any failure means "no engine here"
        pytest.skip(f"no Docker engine: {exc}")
    return client


def _tiny_tar(payload_bytes: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))

        add("etc/hello.txt", b"hello from lmi-builder tests\n")
        add("etc/nonce", uuid.uuid4().hex.encode())  # unique content -> unique layer/digest
        if payload_bytes:
            add("opt/payload.bin", os.urandom(payload_bytes))
    return buf.getvalue()


@dataclass
class TestImages:
    client: object
    run_id: str
    created: list[str] = field(default_factory=list)

    def make(self, payload_bytes: int = 0, labels: dict[str, str] | None = None) -> str:
        """``docker import`` of a tiny tar (a few files, optional random payload); returns the id."""
        all_labels = {"dev.lmi-builder.managed": "true", TEST_LABEL: self.run_id, **(labels or {})}
        changes = [f"LABEL {k}={_quote(v)}" for k, v in all_labels.items()]
        repo = f"lmi-builder-test/publish-{self.run_id}"
        tag = uuid.uuid4().hex[:8]
        out = self.client.api.import_image_from_data(_tiny_tar(payload_bytes), repository=repo,
                                                    tag=tag, changes=changes)
        image = self.client.images.get(f"{repo}:{tag}")
        self.created.append(image.id)
        del out
        return image.id

    def cleanup(self) -> None:
        import docker

        for image_id in self.created:
            try:
                image = self.client.images.get(image_id)
            except docker.errors.NotFound:
                continue
            if image.labels.get(TEST_LABEL) != self.run_id:
                continue  # never remove what this run did not create
            for ref in list(image.tags) + list(image.attrs.get("RepoDigests") or []):
                try:
                    self.client.images.remove(ref, noprune=False)
                except docker.errors.APIError:
                    pass
            try:
                self.client.images.remove(image_id, force=True)
            except docker.errors.APIError:
                pass


def _quote(value: str) -> str:
    import json

    return json.dumps(value)  # Dockerfile LABEL accepts JSON-style double-quoted strings


@pytest.fixture
def test_images(publish_docker) -> Iterator[TestImages]:
    """Factory ``test_images.make(payload_bytes=0, labels={...}) -> image id``; removes its images
    (tags and ``repo@digest`` references included) in teardown."""
    images = TestImages(client=publish_docker, run_id=uuid.uuid4().hex[:12])
    yield images
    images.cleanup()


@pytest.fixture
def isolated_docker_config(tmp_path, monkeypatch) -> Path:
    """``DOCKER_CONFIG`` in a temp dir so the real ``~/.docker`` is never read or written (§5.3)."""
    d = Path(tempfile.mkdtemp(dir=tmp_path, prefix="dockercfg-"))
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    return d


# --- moto S3 (server mode, HTTP on 127.0.0.1) --------------------------------------------------


class MotoUnavailable(RuntimeError):
    """moto_server exited or did not answer in time."""


class MotoNotInstalled(MotoUnavailable):
    pass


def launch_moto_server(ready_s: float = 20) -> tuple[subprocess.Popen, str]:
    """``moto_server`` on a free 127.0.0.1 port, ready (``/moto-api/`` answers) within ``ready_s``; the tests'
    fixtures and the benchmarks share it (a benchmark has no pytest to skip or fail with)."""
    import sys

    import requests

    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(exe).exists():
        raise MotoNotInstalled("moto_server not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + ready_s
    while True:
        if proc.poll() is not None:
            raise MotoUnavailable(f"moto_server exited ({proc.returncode})")
        try:
            if requests.get(f"{url}/moto-api/", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        if time.monotonic() > end:
            stop_process(proc)
            raise MotoUnavailable(f"moto_server not ready after {ready_s:g} s")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_moto_server() -> tuple[subprocess.Popen, str]:
    """``launch_moto_server`` for a test: skipped when moto_server is not installed, failed when it will not start."""
    try:
        return launch_moto_server()
    except MotoNotInstalled as exc:
        pytest.skip(str(exc))
    except MotoUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """One moto server for the session's S3 tests (each test gets its own bucket)."""
    proc, url = start_moto_server()
    try:
        yield url
    finally:
        stop_process(proc)


class MotoS3:
    """A fresh bucket on the moto server; ``client()`` makes a boto3 client from the standard
    configuration (the environment this fixture set), ``counting()`` one that counts the requests
    it sends by operation name."""

    def __init__(self, url: str, bucket: str):
        self.url = url
        self.bucket = bucket
        self.calls: dict[str, int] = {}

    def client(self):
        import boto3

        return boto3.client("s3")

    def counting(self):
        s3 = self.client()

        def count(model, **_kw) -> None:
            self.calls[model.name] = self.calls.get(model.name, 0) + 1

        s3.meta.events.register("before-call.s3.*", count)
        return s3

    def writes(self) -> int:
        """Requests that send object bytes: PutObject, CreateMultipartUpload, UploadPart, ..."""
        return sum(n for op, n in self.calls.items()
                   if op in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                             "CopyObject", "UploadPartCopy"))

    def reset(self) -> None:
        self.calls.clear()


# fake, distinctive credentials: tests assert they never reach output or records
FAKE_AWS_ACCESS_KEY_ID = "AKIAFAKES3TESTKEY123"
FAKE_AWS_SECRET_ACCESS_KEY = "s3cr3t-fake-secret-key-never-logged-0123456789"


@pytest.fixture
def moto_s3(moto_s3_endpoint, monkeypatch) -> MotoS3:
    """Standard boto3 configuration pointed at the moto server by ``AWS_ENDPOINT_URL_S3`` (nothing
    passed to boto3 by hand), fake credentials, and an empty bucket of its own."""
    import uuid

    for key, value in {"AWS_ACCESS_KEY_ID": FAKE_AWS_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_AWS_SECRET_ACCESS_KEY,
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": moto_s3_endpoint,
                       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    store = MotoS3(moto_s3_endpoint, f"lmi-{uuid.uuid4().hex[:12]}")
    store.client().create_bucket(Bucket=store.bucket)
    return store
