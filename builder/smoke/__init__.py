"""Smoke testing: start a built image like an LMI endpoint, wait for readiness, send generation
requests in LMI's schema, judge, record, and always clean up. Entry point: ``smoke_test``."""

from builder.smoke.models import Check, SmokeMetrics, SmokeResult, SmokeSettings
from builder.smoke.run import smoke_test

__all__ = ["Check", "SmokeMetrics", "SmokeResult", "SmokeSettings", "smoke_test"]
