"""Shared pytest configuration. Fixtures that need Docker or a registry live in tests/support/."""

from __future__ import annotations

pytest_plugins = ["tests.support.fixtures"]
