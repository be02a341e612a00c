"""Shared pytest configuration. Fixtures live in tests/support/, one module per area."""

from __future__ import annotations

pytest_plugins = [
    "tests.support.docker_fixtures",   # Docker engine, base rootfs image, dev-cpu runtime image
    "tests.support.registry_fixtures",  # Debian docker-registry on 127.0.0.1, moto ECR
    "tests.support.model_fixtures",     # tiny local models (config, tokenizer, random safetensors)
    "tests.support.validator_fixtures",  # crane validate (built once with Go), a third-party image check
]
