"""Container peak memory, when the engine can tell: ``docker stats`` one-shot ``max_usage``
(cgroup v1), else the cgroup v2 ``memory.peak`` file, else nothing (never a guess)."""

from __future__ import annotations

from pathlib import Path


def _cgroup_v2_peak(container_id: str) -> int | None:
    for path in (f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.peak",
                 f"/sys/fs/cgroup/docker/{container_id}/memory.peak"):
        try:
            return int(Path(path).read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def peak_memory(client, container_id: str) -> tuple[int | None, str | None]:
    try:
        stats = client.api.stats(container_id, stream=False)
    except Exception:  # the SDK raises several types; a missing figure is not a failure
        stats = {}
    mem = (stats or {}).get("memory_stats") or {}
    if isinstance(mem.get("max_usage"), int) and mem["max_usage"] > 0:
        return mem["max_usage"], "docker stats max_usage (cgroup v1)"
    peak = _cgroup_v2_peak(container_id)
    if peak:
        return peak, "cgroup v2 memory.peak"
    return None, None
