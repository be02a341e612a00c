"""The registry fixtures' shared set-up (tests/support/registry_fixtures.py): one started process per
registry, stopped with its block; a second start() is refused instead of orphaning the first."""

from __future__ import annotations

import pytest
import requests

from tests.support.registry_fixtures import _registry_missing, closing_factory, serving_registry

pytestmark = pytest.mark.registry


def test_the_block_starts_one_registry_and_stops_it(tmp_path) -> None:
    with serving_registry(tmp_path / "reg", missing=_registry_missing()) as reg:
        proc = reg.proc
        assert requests.get(f"http://{reg.host}/v2/", timeout=5).status_code == 200
        with pytest.raises(RuntimeError, match="running already"):
            reg.start()  # it once started a second process, and stop() no longer reached the first
        assert reg.proc is proc and proc.poll() is None
    assert proc.poll() is not None and reg.proc is None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{reg.host}/v2/", timeout=2)


def test_a_factory_closes_what_it_made() -> None:
    class Thing:
        closed = False

        def close(self) -> None:
            self.closed = True

    factory = closing_factory(Thing)
    make = next(factory)
    things = [make(), make()]
    assert not any(t.closed for t in things)
    with pytest.raises(StopIteration):
        next(factory)
    assert all(t.closed for t in things)
