"""Moved to builder.credentials (issue 13: one credential model for registry and publish, read through
``docker.auth``). This name stays only while builder/pipeline.py imports ``from_docker_config`` from here."""

from builder.credentials import Credentials, credentials_for, from_docker_config, resolve

__all__ = ["Credentials", "credentials_for", "from_docker_config", "resolve"]
