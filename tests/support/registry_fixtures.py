"""Fixtures (see tests/conftest.py)."""

from __future__ import annotations
