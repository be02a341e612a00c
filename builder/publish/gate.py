"""Publish gate: only the image that passed its smoke test goes out, and never a dev-runtime image
unless explicitly allowed. The smoke outcome is looked up by image id in ``builder.ledger``."""

from __future__ import annotations

from builder import console, labels, ledger
from builder.diagnostics import BuilderError


def check(image_id: str, image_labels: dict[str, str], *, skip_smoke: bool, allow_dev_runtime: bool,
          cache_dir: str | None) -> tuple[str, bool]:
    """Returns (smoke status for the result, gate_skipped). Raises when the image may not go out."""
    if image_labels.get(labels.DEV_RUNTIME) == "true" and not allow_dev_runtime:
        raise BuilderError(
            f"image {image_id[:19]} was built on the dev-cpu development runtime "
            f"({labels.DEV_RUNTIME}=true) and is not an LMI serving image", stage="publish",
            hint="pass --allow-dev-runtime to publish it anyway (e.g. to a test registry)")
    outcome = ledger.lookup(image_id, cache_dir)
    if outcome is not None and outcome.status == "passed":
        return "passed", False
    if skip_smoke:
        why = "never smoke-tested" if outcome is None else f"smoke {outcome.status}"
        console.warn(f"publishing {image_id[:19]} without a passed smoke test ({why}): --skip-smoke")
        return f"not-checked ({why}; --skip-smoke)", True
    if outcome is None:
        raise BuilderError(f"image {image_id[:19]} has no smoke-test result", stage="publish",
                           hint="run `lmi-build smoke IMAGE` first (same --cache-dir), or pass "
                                "--skip-smoke explicitly")
    reason = f": {outcome.reason}" if outcome.reason else ""
    raise BuilderError(f"image {image_id[:19]} did not pass its smoke test (status "
                       f"{outcome.status}{reason})", stage="publish",
                       hint="fix and re-run the smoke test, or pass --skip-smoke explicitly")
