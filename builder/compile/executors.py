"""Two executors for one compile code path: a container of the runtime image (``docker``), or the
partition tool called directly on this host (``local``: inside the runtime, or where the toolchain is
importable). Both get the same argument templates from the catalog (reference/lmi-runtime.md §11).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Literal

from builder import labels as L
from builder.console import info
from builder.diagnostics import BuilderError

STAGE = "compile"
PARTITION_DIR = "/opt/djl/partition"  # where the images keep the partition tools (§11.1)
MOUNT_ROOT = "/opt/ml/compile"
Accelerators = Literal["gpu", "neuron", "none"]


class NoGpuRuntime(Exception):
    """Docker could not give the container GPUs (no NVIDIA container runtime)."""


class RunOutcome:
    def __init__(self, exit_code: int, log_tail: str):
        self.exit_code, self.log_tail = exit_code, log_tail


def _substitute(templates: list[str], values: dict[str, str]) -> list[str]:
    return [t.format(**values) for t in templates]


class DockerExecutor:
    """Runs the tool in ``image`` with the model read-only, the output and properties folders mounted,
    and the target's accelerators passed through."""

    name = "docker"

    def __init__(self, client, image: str, *, accelerators: Accelerators, neuron_devices: list[str] | None = None,
                 run_id: str = ""):
        self.client, self.image, self.accelerators = client, image, accelerators
        self.neuron_devices = neuron_devices or []
        self.run_id = run_id

    def paths(self, model_dir: Path, properties_dir: Path, output_dir: Path) -> dict[str, str]:
        return {"model_dir": f"{MOUNT_ROOT}/model", "properties_dir": f"{MOUNT_ROOT}/properties",
                "output_dir": f"{MOUNT_ROOT}/output"}

    def device_kwargs(self) -> dict:
        import docker.types

        if self.accelerators == "gpu":  # all GPUs (containers-and-registries.md §3)
            return {"device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]}
        if self.accelerators == "neuron":
            return {"devices": [f"{d}:{d}:rwm" for d in self.neuron_devices]}
        return {}

    def spec(self, command: list[str], args_values: dict[str, str], args: list[str], *, model_dir: Path,
             properties_dir: Path, output_dir: Path) -> dict:
        """Keyword arguments for ``containers.create`` (tests assert on exactly this)."""
        argv = command + _substitute(args, args_values)
        # "python ..." / "/path ..." replace the entrypoint; a bare word ("partition") goes to the image's own
        # dockerd-entrypoint.sh, which dispatches it (§11.1).
        direct = argv[0].startswith("/") or argv[0].startswith("python")
        spec = {
            "image": self.image,
            "command": argv[1:] if direct else argv,
            "volumes": {str(model_dir): {"bind": args_values["model_dir"], "mode": "ro"},
                        str(properties_dir): {"bind": args_values["properties_dir"], "mode": "ro"},
                        str(output_dir): {"bind": args_values["output_dir"], "mode": "rw"}},
            "labels": {L.MANAGED: "true", L.ROLE: "compile", f"{L.NS}.compile.run": self.run_id},
            "network_mode": "host",
            "init": True,
            "shm_size": "2g",
            # the host user, so the output can be moved into the cache and removed without root
            "user": f"{os.getuid()}:{os.getgid()}",
            "environment": {"HOME": "/tmp", "HF_HUB_OFFLINE": "1"},
            "detach": True,
        }
        if direct:
            spec["entrypoint"] = [argv[0]]
        spec.update(self.device_kwargs())
        return spec

    def toolchain(self, cmd: list[str]) -> str:
        import docker.errors

        container = self.client.containers.create(
            self.image, entrypoint=[cmd[0]], command=cmd[1:], network_mode="host", detach=True,
            labels={L.MANAGED: "true", L.ROLE: "compile", f"{L.NS}.compile.run": self.run_id})
        try:
            container.start()
            status = container.wait(timeout=120)
            out = container.logs(stdout=True, stderr=False).decode(errors="replace").strip()
            if status.get("StatusCode", 1) != 0:
                err = container.logs(stdout=False, stderr=True).decode(errors="replace").strip()
                raise BuilderError(f"toolchain version check {cmd} failed in {self.image}: {err[-400:]}",
                                   stage=STAGE)
            return out.splitlines()[-1] if out else ""
        except docker.errors.APIError as exc:
            raise BuilderError(f"cannot run {self.image}: {exc.explanation or exc}", stage=STAGE) from None
        finally:
            _remove(container)

    def run(self, spec: dict, timeout_s: int) -> RunOutcome:
        import docker.errors
        import requests

        container = None
        try:
            container = self.client.containers.create(**spec)
            try:
                container.start()
            except docker.errors.APIError as exc:
                text = str(exc.explanation or exc)
                if "could not select device driver" in text:
                    raise NoGpuRuntime(text) from None
                raise BuilderError(f"cannot start the compile container: {text}", stage=STAGE) from None
            tail: list[str] = []
            follower = threading.Thread(target=_follow, args=(container, tail), daemon=True)
            follower.start()
            try:
                status = container.wait(timeout=timeout_s)
            except requests.exceptions.RequestException:
                raise BuilderError(f"compile did not finish within compile.timeout_s={timeout_s}s", stage=STAGE,
                                   hint="raise compile.timeout_s (a 70B Neuron compile takes ~70 min, §17.6)") \
                    from None
            follower.join(timeout=5)
            return RunOutcome(int(status.get("StatusCode", 1)), "".join(tail[-40:]))
        finally:
            if container is not None:
                _remove(container)


def _follow(container, tail: list[str]) -> None:
    try:
        for chunk in container.logs(stream=True, follow=True):
            line = chunk.decode(errors="replace")
            tail.append(line)
            info("  | " + line.rstrip("\n"))
    except Exception:  # the container went away: the waiter reports
        return


def _remove(container) -> None:
    try:
        container.remove(force=True)
    except Exception:  # already gone
        pass


class LocalExecutor:
    """Calls the partition tool on this host; ``/opt/djl/partition`` may be remapped (env
    ``LMI_BUILD_PARTITION_DIR``) for hosts that carry the tools elsewhere."""

    name = "local"

    def __init__(self, *, partition_dir: str | None = None, python: str | None = None):
        self.partition_dir = partition_dir or os.environ.get("LMI_BUILD_PARTITION_DIR") or PARTITION_DIR
        self.python = python or sys.executable

    def paths(self, model_dir: Path, properties_dir: Path, output_dir: Path) -> dict[str, str]:
        return {"model_dir": str(model_dir), "properties_dir": str(properties_dir), "output_dir": str(output_dir)}

    def argv(self, command: list[str], args: list[str], values: dict[str, str]) -> list[str]:
        argv = command + _substitute(args, values)
        if argv[0] == "partition":  # what dockerd-entrypoint.sh does with it (§11.1)
            argv = [self.python, f"{PARTITION_DIR}/partition.py", *argv[1:]]
        elif argv[0].startswith("python"):
            argv = [self.python, *argv[1:]]
        return [a.replace(PARTITION_DIR, self.partition_dir, 1) if a.startswith(PARTITION_DIR) else a for a in argv]

    def toolchain(self, cmd: list[str]) -> str:
        argv = [self.python, *cmd[1:]] if cmd[0].startswith("python") else cmd
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise BuilderError(f"toolchain not usable on this host: {' '.join(cmd)} failed: "
                               f"{proc.stderr.strip()[-400:]}", stage=STAGE,
                               hint="use --compile-executor docker to compile inside the runtime image")
        out = proc.stdout.strip()
        return out.splitlines()[-1] if out else ""

    def run(self, argv: list[str], timeout_s: int, env: dict[str, str] | None = None) -> RunOutcome:
        tail: list[str] = []
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(line)
                info("  | " + line.rstrip("\n"))
            code = proc.wait()
        except BaseException:  # Ctrl-C: stop the tool before the caller discards its output
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
        if code < 0:
            raise BuilderError(f"compile killed after compile.timeout_s={timeout_s}s", stage=STAGE)
        return RunOutcome(code, "".join(tail[-40:]))
