"""Where a tag points, for publish's verification (``HEAD /v2/<repo>/manifests/<ref>``).

One registry client serves the whole builder (``builder.registry.client``): all four manifest
media types in Accept (otherwise distribution 2.8 converts to schema1 and answers another digest,
containers-and-registries.md §5.5), Basic and Bearer challenges, plain HTTP for loopback only,
bounded retries of reads on connection errors and 5xx. This module only names it for publish.
"""

from __future__ import annotations

import requests

from builder.credentials import Credentials
from builder.registry.client import MANIFEST_ACCEPT as MANIFEST_TYPES
from builder.registry.client import RegistryClient as _RegistryClient
from builder.registry.client import base_url

__all__ = ["MANIFEST_TYPES", "RegistryClient", "base_url"]


class RegistryClient(_RegistryClient):
    """The shared client, reporting its errors as the publish stage's."""

    def __init__(self, host: str, creds: Credentials | None = None, session: requests.Session | None = None):
        super().__init__(host, creds, stage="publish", session=session)
