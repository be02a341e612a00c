"""The life of one smoke/serve container: create + start (never ``run``), host networking on a
127.0.0.1 port, ``init=True``, labels naming the run, the accelerators the target needs, and
cleanup that always happens (``finally`` + SIGINT/SIGTERM), containers-and-registries.md §3.
"""

from __future__ import annotations

import glob
import os
import secrets
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from builder import labels as L
from builder.diagnostics import BuilderError

STAGE = "smoke"
MODEL_DIR = "/opt/ml/model"  # baked; nothing is mounted (reference/lmi-runtime.md §13)
OWNER_PID = f"{L.NS}.owner.pid"  # the process that started it: --sweep leaves live owners' containers
OWNER_HOST = f"{L.NS}.owner.host"
SERVE_IMAGE = f"{L.NS}.serve.image"  # image id a serve container runs (predict reuses it)
SERVE_PORT = f"{L.NS}.serve.port"
NO_GPU_RUNTIME_MARKERS = ("could not select device driver", "nvidia-container-cli", "unknown or invalid runtime")


class NoAcceleratorError(BuilderError):
    """The target needs GPUs / Neuron devices and this host cannot give them to a container."""


def new_run_id() -> str:
    return secrets.token_hex(6)


def free_port() -> int:
    """A port nobody listens on at 127.0.0.1 right now (host networking: the server binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DevicePlan:
    """What a container gets: ``kind`` is recorded in the result as ``accelerators``."""

    kind: str  # "gpu" | "neuron" | "none"
    device_requests: list[Any] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)


def plan_devices(target_kind: str | None, accelerators: str, devices: int | None = None,
                 neuron_glob: str = "/dev/neuron*") -> DevicePlan:
    """``--accelerators none`` (or a CPU target) requests nothing; a GPU target asks for all GPUs
    (DeviceRequest count=-1, §3); a Neuron target maps all the host's ``/dev/neuron*`` devices
    (the recipe's ``devices`` counts NeuronCores, several per device, so it is not compared here)."""
    if accelerators == "none" or target_kind in (None, "cpu"):
        return DevicePlan("none")
    if target_kind == "gpu":
        import docker.types

        return DevicePlan("gpu", device_requests=[docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])])
    if target_kind == "neuron":
        found = sorted(p for p in glob.glob(neuron_glob) if os.path.basename(p)[len("neuron"):].isdigit())
        if not found:
            raise NoAcceleratorError("the target needs AWS Neuron devices and this host has no /dev/neuron*",
                                     stage=STAGE, hint="run on an inf2/trn1 host, or --accelerators none for a "
                                                       "CPU-capable runtime")
        return DevicePlan("neuron", devices=[f"{p}:{p}:rwm" for p in found])
    raise BuilderError(f"unknown target kind {target_kind!r}", stage=STAGE)


def is_no_gpu_runtime(exc: Exception) -> bool:
    text = str(getattr(exc, "explanation", "") or exc)
    return any(m in text for m in NO_GPU_RUNTIME_MARKERS)


class ManagedContainer:
    """One container we own. Use as a context manager: it is removed on every way out."""

    def __init__(self, client, image: str, *, run_id: str, role: str, port: int, env: dict[str, str] | None = None,
                 shm_size: str | None = None, plan: DevicePlan | None = None,
                 extra_labels: dict[str, str] | None = None, command: list[str] | None = None,
                 volumes: dict[str, dict[str, str]] | None = None):
        self.client = client
        self.volumes = volumes  # docker SDK form {host_path: {"bind": path, "mode": "ro"}} (S3-shape smoke)
        self.image = image
        self.run_id = run_id
        self.role = role
        self.port = port
        self.plan = plan or DevicePlan("none")
        self.command = command
        self.shm_size = shm_size
        self.container = None
        # DJL reads SERVING_<KEY> env as global keys, env winning (reference/lmi-runtime.md §10.1):
        # bind inference and management to the same 127.0.0.1 port (the dev-cpu front end follows suit).
        address = f"http://127.0.0.1:{port}"
        self.env = {**(env or {}), "SERVING_INFERENCE_ADDRESS": address, "SERVING_MANAGEMENT_ADDRESS": address}
        self.labels = {L.MANAGED: "true", L.ROLE: role, L.SMOKE_RUN: run_id, OWNER_PID: str(os.getpid()),
                       OWNER_HOST: socket.gethostname(), **(extra_labels or {})}

    @property
    def name(self) -> str:
        return f"lmi-{self.role}-{self.run_id}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import docker.errors

        kwargs: dict[str, Any] = {"detach": True, "init": True, "network_mode": "host", "labels": self.labels,
                                  "environment": self.env, "name": self.name}
        if self.shm_size:
            kwargs["shm_size"] = self.shm_size
        if self.plan.device_requests:
            kwargs["device_requests"] = self.plan.device_requests
        if self.plan.devices:
            kwargs["devices"] = self.plan.devices
        if self.command is not None:
            kwargs["command"] = self.command
        if self.volumes:
            kwargs["volumes"] = self.volumes
        try:
            self.container = self.client.containers.create(self.image, **kwargs)
            self.container.start()
        except docker.errors.APIError as exc:
            if self.plan.kind == "gpu" and is_no_gpu_runtime(exc):
                # create succeeded and start failed: a container in "Created" state is left (§3);
                # the caller's cleanup removes it by id and by run label.
                raise NoAcceleratorError(
                    f"the target needs GPUs and this Docker engine has no GPU runtime: {exc.explanation or exc}",
                    stage=STAGE, hint="install the NVIDIA Container Toolkit, or --accelerators none for a "
                                      "CPU-capable runtime") from None
            raise BuilderError(f"cannot start a container from {self.image}: {exc.explanation or exc}",
                               stage=STAGE) from None

    def state(self) -> tuple[bool, int | None, str]:
        """(running, exit code when it ended, status text)."""
        import docker.errors

        if self.container is None:
            return False, None, "not created"
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False, None, "removed"
        st = self.container.attrs.get("State") or {}
        status = st.get("Status") or self.container.status
        if status in ("exited", "dead"):
            return False, int(st.get("ExitCode", -1)), status
        return True, None, status

    def logs(self, tail: int | str = "all") -> str:
        import docker.errors

        if self.container is None:
            return ""
        try:
            return self.container.logs(stdout=True, stderr=True, tail=tail).decode("utf-8", "replace")
        except docker.errors.APIError:
            return ""

    def remove(self) -> None:
        """Stop (SIGTERM, reaped by init) and remove, by id and by run label; signals held off."""
        with _signals_held():
            remove_by_label(self.client, f"{L.SMOKE_RUN}={self.run_id}",
                            extra_ids=[self.container.id] if self.container is not None else [])

    def __enter__(self) -> ManagedContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def remove_by_label(client, label: str, *, extra_ids: list[str] | None = None, stop_timeout: int = 10) -> list[str]:
    import docker.errors

    ids = list(extra_ids or [])
    try:
        ids += [c["Id"] for c in client.api.containers(all=True, filters={"label": label})]
    except docker.errors.APIError:
        pass
    removed = []
    for cid in dict.fromkeys(ids):
        try:
            client.api.stop(cid, timeout=stop_timeout)
        except docker.errors.APIError:
            pass  # not running, or already gone
        try:
            client.api.remove_container(cid, force=True)
            removed.append(cid)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise BuilderError(f"cannot remove container {cid[:12]}: {exc.explanation or exc}",
                                   stage=STAGE) from None
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(client, *, roles: tuple[str, ...] = ("smoke", "serve"), force: bool = False) -> list[str]:
    """Remove containers a crashed run left (by label). Containers whose owner process is still
    alive on this host are left alone unless ``force``."""
    host = socket.gethostname()
    removed: list[str] = []
    for c in client.api.containers(all=True, filters={"label": [f"{L.MANAGED}=true"]}):
        labels = c.get("Labels") or {}
        if labels.get(L.ROLE) not in roles:
            continue
        pid = labels.get(OWNER_PID, "")
        if not force and labels.get(OWNER_HOST) == host and pid.isdigit() and int(pid) != os.getpid() \
                and _pid_alive(int(pid)):
            continue
        removed += remove_by_label(client, f"{L.SMOKE_RUN}={labels.get(L.SMOKE_RUN, '')}", extra_ids=[c["Id"]]) \
            if labels.get(L.SMOKE_RUN) else remove_by_label(client, "never-matches", extra_ids=[c["Id"]])
    return removed


# ----------------------------------------------------------------------------- signals
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C (KeyboardInterrupt) inside the block, so ``finally`` clauses
    run and the container is removed; the CLI turns it into exit 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise_interrupt) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def _signals_held() -> Iterator[None]:
    """A second Ctrl-C during cleanup must not abandon the container half removed: remember the
    signal, finish cleanup, then raise."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = {s: signal.signal(s, lambda signum, _f: pending.append(signum)) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if pending:
        raise KeyboardInterrupt(f"signal {signal.Signals(pending[0]).name}")
