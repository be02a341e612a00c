"""Fixtures shared by several test modules (Docker engine, base images, local registry, ...)."""

from __future__ import annotations
