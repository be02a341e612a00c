"""LMI's own validators beside ours: what the Java front end would hand the Python worker, and both verdicts.

LMI validates engine options only inside a running worker (reference/lmi-runtime.md §16), with a
pydantic class per backend (§8.2-8.4). To ask it about a recipe without a container, this module
rebuilds the dict the worker's handler gives that class, from the resolved ``serving.properties``,
applying the derivations the Java front end makes first (each one cited below), then runs it
through ``builder.runtime.lmi_check`` (djl_python 0.34.0, the only release Maven Central serves
here, §19). LMI's verdict is a second opinion: it never changes our exit code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from builder.catalog.facts import load_facts
from builder.diagnostics import Diagnostic

MODEL_DIR = "/opt/ml/model"  # §13: where the baked model sits; the worker gets it as model_dir

# The backends whose own validator imports with pydantic alone (§19); others get base Properties.
CHECKED = ("tensorrt-llm", "neuronx", "lmi-dist")


class LmiInput(BaseModel):
    """The validator's input for one recipe."""

    backend: str  # key of builder.runtime.lmi_check.VALIDATORS, or "properties" for base Properties
    options: dict[str, str]  # keys without ``option.``, as the validator class takes them
    derived: dict[str, str] = {}  # key -> why the Java front end sets it (not in serving.properties)
    env: dict[str, str] = {}  # the worker's environment as far as validators read it


class LmiComparison(BaseModel):
    """Our verdict and LMI's for one recipe."""

    file: str
    ours_valid: bool
    our_errors: list[str] = []  # rule ids of our errors
    checked: bool  # False: LMI was not asked (recipe could not be resolved, or no jar)
    backend: str = ""
    validator: str = ""  # e.g. TensorRtLlmProperties
    djl_python_version: str = ""
    recipe_release: str = ""  # family version, e.g. "tensorrt-llm 0.29.0"
    version_differs: bool = False
    lmi_ok: bool | None = None
    lmi_errors: list[str] = []
    derived: dict[str, str] = {}
    note: str = ""  # why LMI was not asked, when it was not

    @property
    def agree(self) -> bool | None:
        if self.lmi_ok is None:
            return None
        return self.lmi_ok == self.ours_valid

    def line(self) -> str:
        """``LMI djl_python 0.34.0 TensorRtLlmProperties: accepts|rejects: <message>``."""
        if not self.checked or self.lmi_ok is None:
            return f"lmi-check: {self.note}"
        verdict = "accepts" if self.lmi_ok else "rejects"
        msg = "; ".join(self.lmi_errors) if self.lmi_errors else "no error"
        name = self.validator + (" (base class only)" if self.backend == "properties" else "")
        text = f"LMI djl_python {self.djl_python_version} {name}: {verdict}: {msg}"
        if self.version_differs:
            text += f" (djl_python {self.djl_python_version} is not the recipe's release, {self.recipe_release})"
        ours = "valid" if self.ours_valid else "invalid"
        text += f"; ours: {ours}" + ("" if self.agree else " (they differ)")
        return text

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["agree"] = self.agree
        return data


def backend_for(resolved: Any) -> str:
    """Which LMI validator judges this recipe (§8.2-8.4); ``properties`` means the base class (§6)."""
    # tensorrt-llm: TensorRtLlmProperties (§8.3); neuronx: TransformerNeuronXProperties (§8.4); families.yaml
    validator = load_facts().of(resolved.release.family).lmi_validator
    if validator:
        return validator
    if resolved.rolling_batch == "lmi-dist" and not _lmi_dist_rewritten(resolved):
        return "lmi-dist"  # LmiDistRollingBatch builds LmiDistRbProperties (§8.2)
    return "properties"


def _lmi_dist_rewritten(resolved: Any) -> bool:
    """From 0.33.0 Java rewrites rolling_batch=lmi-dist to vllm before any worker starts (§2, §7 step 2):
    families.yaml removed_backends + rewrites_removed."""
    facts = load_facts().of(resolved.release.family)
    rb = resolved.rolling_batch
    return rb in facts.rewrites_removed and facts.removed_at(rb, resolved.release.djl_version) is not None


def validator_input(resolved: Any) -> LmiInput:
    """The dict LMI's handler would validate, rebuilt from the resolved ``serving.properties``."""
    props: dict[str, str] = dict(resolved.properties)
    # §3: ModelInfo strips ``option.`` from engine options; the per-model server keys (``engine``,
    # ``batch_size``, ...) travel in the same model properties (§7: LmiConfigRecommender reads
    # ``batch_size`` from them, and §8.1/§8.2 validators declare an ``engine`` field). ``option.env``
    # is consumed by Java (§5) and not passed on.
    opts: dict[str, str] = {}
    for key, value in props.items():
        name = key[len("option."):] if key.startswith("option.") else key
        if name != "env":
            opts[name] = value
    derived: dict[str, str] = {}

    def derive(key: str, value: str, why: str) -> None:
        if opts.get(key) != value:
            derived[key] = why
        opts[key] = value

    if "model_id" not in opts and "model_dir" not in opts:
        # The worker is told where its model lies; Properties falls back to model_dir (§6, §13).
        derive("model_dir", MODEL_DIR, "the model directory the worker is given (§6 model_id_or_path, §13)")
    if opts.get("engine") == "MPI":
        derive("mpi_mode", "true", "engine=MPI forces option.mpi_mode=true (§4)")
    if _lmi_dist_rewritten(resolved):
        derive("rolling_batch", "vllm", "from 0.33.0 Java rewrites lmi-dist to vllm (§2, §7 step 2)")
        derive("mpi_mode", "false", "... with mpi_mode=false (§7 step 2)")
    rb = opts.get("rolling_batch", "")
    if rb == "trtllm":
        derive("mpi_mode", "true", "rolling_batch=trtllm forces mpi_mode=true (§5, §7 step 4)")
    elif rb == "lmi-dist" and not _lmi_dist_rewritten(resolved):
        derive("mpi_mode", "true", "v0.29.0 auto-configuration sets mpi_mode=true for lmi-dist (§7)")
    env = {k: v for k, v in resolved.recipe.env.items() if k.startswith("NEURON_")}  # tnx env defaults (§8.4)
    return LmiInput(backend=backend_for(resolved), options=opts, derived=derived, env=env)


def compare_paths(paths: list[Path], results: dict[Path, list[Diagnostic]], *,
                  cache_dir: str | os.PathLike | None = None, only_checked: bool = False
                  ) -> dict[Path, LmiComparison]:
    """LMI's verdict beside ours for each recipe, all validators run in one child process.

    ``results`` are our diagnostics per file. With ``only_checked``, recipes outside ``CHECKED``
    are left out instead of being judged by base ``Properties``.
    """
    from builder.lmi.resolve import resolve
    from builder.recipe import load_recipe
    from builder.runtime import maven
    from builder.runtime.lmi_check import VALIDATORS, lmi_check_many

    out: dict[Path, LmiComparison] = {}
    pending: list[tuple[Path, LmiInput]] = []
    for path in paths:
        diags = results.get(path, [])
        errors = sorted({d.rule for d in diags if d.severity == "error"})
        base = LmiComparison(file=str(path), ours_valid=not errors, our_errors=errors, checked=False)
        loaded = load_recipe(path)
        if loaded.recipe is None:
            out[path] = base.model_copy(update={"note": "not asked: the recipe does not load"})
            continue
        try:
            resolved = resolve(loaded.recipe)
            lmi_in = validator_input(resolved)
        except Exception as exc:  # an invalid recipe may not resolve; that is ours to report, not LMI's
            out[path] = base.model_copy(update={"note": f"not asked: the recipe does not resolve ({exc})"})
            continue
        if only_checked and lmi_in.backend not in CHECKED:
            continue
        release = f"{resolved.release.family} {resolved.release.version}"
        out[path] = base.model_copy(update={
            "backend": lmi_in.backend, "recipe_release": release, "derived": lmi_in.derived,
            "djl_python_version": maven.DJL_PYTHON_VERSION,
            "version_differs": resolved.release.djl_version != maven.DJL_PYTHON_VERSION,
            "validator": VALIDATORS.get(lmi_in.backend, ("properties", "Properties"))[1]})
        pending.append((path, lmi_in))
    verdicts = lmi_check_many([(i.backend, i.options) for _, i in pending], cache_dir=cache_dir,
                              env=[i.env for _, i in pending])
    for (path, _), verdict in zip(pending, verdicts, strict=True):
        if verdict.ok is None:
            out[path] = out[path].model_copy(update={"note": _no_answer(verdict.message)})
        else:
            out[path] = out[path].model_copy(update={"checked": True, "lmi_ok": verdict.ok,
                                                     "lmi_errors": verdict.errors})
    return out


NO_JAR = "djl_python jar not cached; run 'lmi-build runtime fetch'"


def _no_answer(message: str) -> str:
    return NO_JAR if "not in the cache" in message else message
