"""Host preflight: which accelerators this host has, and whether it may compile for the target.

TensorRT-LLM engines run only on the GPU architecture they were built for, and Neuron artifacts only
under the compiler that made them (reference/lmi-runtime.md §11.4, §17.5), so a compile on the wrong
host is refused with the exact reason, never attempted.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from collections.abc import Callable

from builder.catalog import Instance
from builder.compile.models import Gpu, HostAccelerators

QUERY = ["--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader"]
_MEM = re.compile(r"^\s*([\d.]+)\s*(MiB|GiB|MB|GB)?\s*$")


def parse_nvidia_smi(text: str) -> list[Gpu]:
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0]:
            continue
        m = _MEM.match(parts[2])
        unit = {"MiB": 1 << 20, "GiB": 1 << 30, "MB": 10**6, "GB": 10**9}.get(m.group(2) or "MiB", 1 << 20) if m else 0
        gpus.append(Gpu(name=parts[0].removeprefix("NVIDIA "), compute_capability=parts[1],
                        memory_bytes=int(float(m.group(1)) * unit) if m else 0))
    return gpus


def detect_host(*, run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                which: Callable[[str], str | None] = shutil.which, dev_glob: str = "/dev/neuron*") -> HostAccelerators:
    host = HostAccelerators(neuron_devices=sorted(glob.glob(dev_glob)))
    smi = which("nvidia-smi")
    if smi is None:
        host.note = "nvidia-smi not found"
        return host
    host.nvidia_smi = smi
    try:
        proc = run([smi, *QUERY], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        host.note = f"nvidia-smi failed: {exc}"
        return host
    if proc.returncode != 0:
        host.note = f"nvidia-smi exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:200]}"
        return host
    host.gpus = parse_nvidia_smi(proc.stdout)
    return host


def refusal(host: HostAccelerators, instance: Instance, *, ranks: int) -> str | None:
    """None when this host can compile for ``instance`` with ``ranks`` = tp * pp devices, else why not."""
    target = f"target ml.{instance.name} is {instance.accelerator} {instance.arch}"
    if instance.kind == "gpu":
        if not host.gpus:
            return (f"{target}; this host has no NVIDIA GPU ({host.note or 'nvidia-smi listed none'}); "
                    f"TensorRT-LLM engines must be built on an {instance.arch} GPU")
        archs = sorted({g.arch for g in host.gpus})
        if archs != [instance.arch]:
            names = ", ".join(sorted({f"{g.name} {g.arch}" for g in host.gpus}))
            return f"{target}; this host has {names}; engines are architecture-specific"
        if len(host.gpus) < ranks:
            return (f"{target}; compiling with tensor x pipeline parallel degree {ranks} needs {ranks} GPUs, "
                    f"this host has {len(host.gpus)}")
        return None
    if instance.kind == "neuron":
        if not host.neuron_devices:
            return (f"{target}; this host has no Neuron devices (/dev/neuron*); Neuron artifacts must be "
                    f"compiled on {instance.arch} hardware with the runtime's neuronx-cc")
        return None
    return f"{target}: CPU targets have nothing to compile ahead of time"
