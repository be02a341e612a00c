"""``docker pull`` through the engine under a deadline that follows the bytes (base images for the bake,
assembled images for the smoke test).

The SDK's timeout is per read, and an engine whose registry stalls can keep the event stream open for as
long as it likes. A pull's size is not known up front (an LMI base is 10-20 GB), so the deadline is the
network budget of what the engine has announced so far: ``LMI_BUILD_NET_DEADLINE_S`` plus every layer's
``progressDetail.total`` at ``LMI_BUILD_NET_MIN_RATE_MBPS`` (builder.registry.deadlines), recomputed on
each event. A stream that goes silent for the floor is cut too. Errors arrive in-band
(containers-and-registries.md §4) and are raised with the image and the engine's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from builder.diagnostics import BuilderError
from builder.engine.client import registry_auth
from builder.engine.events import EventReader, Silent, check_event
from builder.registry.deadlines import NetBudget


def pull(client, repository: str, tag: str, *, what: str, stage: str, auth_config: dict | None = None,
         hint: str | None = None, budget: NetBudget | None = None,
         clock: Callable[[], float] = time.monotonic) -> None:
    """Pull ``repository:tag`` (tag may be ``sha256:...``); raises BuilderError naming ``what``."""
    b = budget or NetBudget.from_env()
    auth = auth_config if auth_config is not None else registry_auth(repository, stage=stage)
    try:
        stream = client.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth)
    except Exception as exc:  # the SDK raises several types for connection, auth and not-found answers
        raise BuilderError(f"pulling {what} failed: {exc}", stage=stage, hint=hint) from None
    reader = EventReader(client, stream, "docker-pull-events")
    start = clock()
    totals: dict[str, int] = {}
    while True:
        known = sum(totals.values())
        left = b.seconds(known) - (clock() - start)
        try:
            item = reader.next(min(left, b.floor_s))  # silence for the floor is a stall, whatever is left
        except Silent:
            reader.cut()
            limit = b.describe(known) if left <= b.floor_s else f"{b.floor_s:g} s without an event"
            raise BuilderError(f"pulling {what} did not finish within {limit}; stopped waiting for the engine",
                               stage=stage, hint=NetBudget.hint()) from None
        except BuilderError:
            raise
        except Exception as exc:  # the SDK's connection errors, raised by the reader thread
            raise BuilderError(f"pulling {what} failed: {exc}", stage=stage, hint=hint) from None
        if item is None:
            return
        check_event(item, f"pulling {what}", stage=stage, hint=hint)
        total = (item.get("progressDetail") or {}).get("total")
        if item.get("id") and isinstance(total, int) and total > 0:
            totals[item["id"]] = max(totals.get(item["id"], 0), total)
