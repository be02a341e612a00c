"""Labels only the Docker bake writes: the artifacts image's, and the split of the model image's
labels (``builder.assembly.labels.model_labels``, shared with the registry assembler) into the stable
ones and those that change with the serving configuration.
"""

from __future__ import annotations

from builder import __version__
from builder import labels as L
from builder.assembly.labels import OCI

# Labels that change with the serving configuration. Every other label is applied in a separate,
# engine-cached build before the config layer: the legacy builder turns each ``labels=`` entry into
# its own LABEL step (one container + commit, ~0.27 s each here), so a config-only rebuild re-runs
# only these few (docs/image.md, "Config-only rebuilds").
CONFIG_DEPENDENT = (L.RECIPE_HASH, L.RECIPE_JSON, f"{OCI}.version", L.INPUTS_DIGEST, L.INPUTS_JSON)


def split_labels(labels: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(stable, config-dependent). The final image inherits the stable ones (MANAGED included) from
    its parent, so both images are ours by label; a stable label re-runs only when its value changes."""
    dependent = {k: v for k, v in labels.items() if k in CONFIG_DEPENDENT}
    stable = {k: v for k, v in labels.items() if k not in CONFIG_DEPENDENT}
    return stable, dependent


def artifacts_labels(*, inputs_digest: str, base_ref: str, base_digest: str, model_id: str,
                     model_digest: str | None) -> dict[str, str]:
    return {
        L.MANAGED: "true",
        L.ROLE: "artifacts",
        L.INPUTS_DIGEST: inputs_digest,
        L.BUILDER_VERSION: __version__,
        L.MODEL_ID: model_id,
        L.MODEL_DIGEST: model_digest or "",
        f"{OCI}.base.name": base_ref,
        f"{OCI}.base.digest": base_digest,
    }
