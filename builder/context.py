"""``RunContext``: what every stage of a run shares, made once by the pipeline.

The options the user gave, where the cache lives (local folder and S3 remote), where this run writes its
logs and record, the reporter (``builder.console``: step / info / warn on stderr) and the Docker engine,
connected on first use so a run that never needs it (validate-only failures, S3-only publishing on a host
without Docker) never asks for one. Stages read it; none of them stores state in it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from builder import console
from builder.options import BuildOptions

ENGINE_TIMEOUT_S = 900


@dataclass(frozen=True)
class CachePlace:
    dir: Path | None  # None: builder.paths.cache_dir's default (LMI_BUILD_CACHE, then the user cache)
    remote: str | None  # s3://bucket/prefix/ behind the local caches (None: LMI_BUILD_CACHE_REMOTE)


@dataclass(frozen=True)
class RunContext:
    options: BuildOptions
    record_dir: Path  # this run's logs and build record
    cache: CachePlace
    reporter: ModuleType = console
    _engines: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def for_build(cls, options: BuildOptions) -> RunContext:
        return cls(options=options, record_dir=record_dir(options),
                   cache=CachePlace(dir=options.cache_dir, remote=options.cache_remote))

    def engine(self, stage: str) -> Any:
        """The run's one Docker client (builder.engine), connected and pinged on first use; a BuilderError
        naming ``stage`` when there is no engine. Its per-read timeout is the bake's (a large context takes
        long to commit); every wait that must end sooner has its own deadline (builder/registry/deadlines.py)."""
        if "client" not in self._engines:
            from builder.engine import docker_client

            self._engines["client"] = docker_client(stage, timeout=ENGINE_TIMEOUT_S)
        return self._engines["client"]


def record_dir(opts: BuildOptions) -> Path:
    """Beside ``--report`` when given, else a fresh folder under the cache's ``builds/``."""
    if opts.report:
        return opts.report.resolve().parent
    from builder.paths import cache_dir

    # the pid keeps two builds started in the same second from sharing (and overwriting) one record
    return cache_dir(opts.cache_dir) / "builds" / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
