"""``lmi-build build`` for a multi-model recipe: validate -> resolve -> fetch -> runtime -> bake ->
smoke -> mme (archives) -> publish (S3, with --s3 or publish.s3 and --push). The single-model
pipeline (builder/pipeline.py) hands a recipe with top-level ``models:`` here; options that only the
single-model path has are refused as usage errors rather than ignored."""

from __future__ import annotations

from pathlib import Path

from builder import console
from builder.diagnostics import BuilderError, DiagnosticError, UsageError, has_errors
from builder.record import BuildRecord


def _check_options(opts) -> None:
    if opts.assembler == "registry":
        # the registry assembler builds one model's layer plan (builder/registry/assemble.py); a store of
        # several model folders is baked by the docker engine and pushed by the publisher instead
        raise UsageError("--assembler registry: not available for multi-model recipes (the registry assembler "
                         "lays out one model; docs/multi-model.md)",
                         hint="build with the default docker assembler and publish with --push (publish.ecr, "
                              "publish.registry or --registry)")
    unsupported = [flag for flag, on in (("--tag", bool(opts.tags)),
                                         ("--compile-executor", bool(opts.compile_executor)),
                                         ("--lmi-check", opts.lmi_check)) if on]
    if unsupported:
        raise UsageError(f"{', '.join(unsupported)}: not available for multi-model recipes yet (docs/multi-model.md)",
                         hint="build with the docker engine; publish with --push (image and/or --s3 archives)")
    if opts.registry:
        from builder.publish.models import split_registry

        try:
            split_registry(opts.registry)
        except ValueError as exc:
            raise UsageError(f"--registry: {exc}") from None
    if opts.report is not None and opts.report.is_dir():
        raise UsageError(f"--report {opts.report} is a folder; give the file the build record is written to")
    if opts.s3:
        from builder.publish.s3_publish import check_uri

        check_uri(opts.s3)


def run_multi_build(opts) -> BuildRecord:
    from builder.pipeline import _record_dir

    _check_options(opts)
    record = BuildRecord(recipe_file=str(opts.recipe))
    record_dir = _record_dir(opts)
    target = opts.report or (record_dir / "build-record.json")
    try:
        _run(opts, record, record_dir)
        record.ok = True
    finally:
        try:
            record.write(target)
        except OSError as exc:
            console.warn(f"could not write the build record to {target}: {exc.strerror or exc}")
    record.inputs.setdefault("record_path", str(target))
    return record


def _run(opts, record: BuildRecord, record_dir: Path) -> None:
    from builder.multi.layout import fetch, plan_models
    from builder.multi.validate import validate_multi_path

    with record.timed("validate") as st:
        console.step(f"validate {opts.recipe} (multi-model)")
        loaded, diags = validate_multi_path(opts.recipe, cache_dir=opts.cache_dir)
        for d in diags:
            if d.severity != "error":
                console.info(d.format())
        if has_errors(diags) or loaded.recipe is None:
            st.status = "failed"
            raise DiagnosticError([d for d in diags if d.severity == "error"])
    recipe = loaded.recipe
    s3_uri = opts.s3 or (recipe.publish.s3.uri if opts.push and recipe.publish.s3 else None)
    push_image = opts.push and bool(recipe.publish.ecr or recipe.publish.registry or opts.registry)
    if opts.push and not s3_uri and not push_image:  # said now, not after the fetch and the bake
        raise UsageError(f"--push: {opts.recipe} has no publish target (publish.ecr, publish.registry or "
                         "publish.s3) and no --registry or --s3 was given",
                         hint="add a publish: section to the recipe, pass --registry HOST[:PORT]/REPO or --s3 "
                              "s3://bucket/prefix/, or build without --push")

    with record.timed("resolve") as st:
        from builder.multi.image import recipe_hash

        plans = plan_models(loaded)
        record.recipe_hash = recipe_hash(plans)
        record.resolved = {"models": {p.name: p.resolved.to_json() for p in plans}}
        first = plans[0].resolved
        record.inputs.update({"recipe_file": str(opts.recipe), "recipe_hash": record.recipe_hash,
                              "lmi": f"{first.release.family} {first.release.version}",
                              "instance_type": first.instance.name, "models": [p.name for p in plans]})

    with record.timed("fetch") as st:
        fetch(plans, cache_dir=opts.cache_dir, cache_remote=opts.cache_remote)
        st.details["models"] = {p.name: ({"digest": p.artifacts.digest, "files": len(p.artifacts.files),
                                          "cache_origin": p.artifacts.origin} if p.artifacts else None)
                                for p in plans}
        record.inputs["model_digests"] = {p.name: p.artifacts.digest for p in plans if p.artifacts}

    base_image = opts.base_image
    with record.timed("runtime") as st:
        if first.release.family == "dev-cpu" and not base_image:
            if any(p.resolved.entry_point == "djl_python.huggingface" for p in plans):
                from builder.runtime.hf import ensure_hf_runtime as ensure
            else:
                from builder.runtime.devcpu import ensure_devcpu_runtime as ensure
            console.step("dev-cpu runtime")
            runtime = ensure(opts.cache_dir)
            base_image = runtime.image_id
            st.details.update({"ref": runtime.ref, "image_id": runtime.image_id})
            st.status = "passed" if runtime.built else "cached"
        else:
            st.status, st.reason = "skipped", "the runtime is a published LMI image (pinned by digest at bake)"
        base_image = base_image or first.base_image

    with record.timed("bake") as st:
        from builder.multi.image import bake_multi

        console.step(f"bake multi-model image ({len(plans)} models)")
        image = bake_multi(plans, recipe, base_image=base_image or "", cache_dir=opts.cache_dir,
                           allow_unpinned=opts.allow_unpinned_base or (first.release.family == "dev-cpu"
                                                                       and not opts.base_image),
                           no_cache=opts.no_cache)
        record.image = image.model_dump(mode="json")
        if image.reused:
            st.status = "cached"

    smoke_status = "skipped"
    with record.timed("smoke") as st:
        if opts.smoke == "never" or not recipe.smoke.enabled:
            st.status, st.reason = "skipped", "--smoke never" if opts.smoke == "never" else "smoke.enabled is false"
        elif first.instance.kind != "cpu" and opts.accelerators == "auto" and opts.smoke == "auto" \
                and not _has_devices(first.instance.kind):
            st.status, st.reason = "skipped", f"this host has no {first.instance.kind} devices for the smoke test"
        else:
            from builder import ledger

            previous = None if opts.force_smoke else ledger.lookup(image.image_id, opts.cache_dir)
            if previous is not None and previous.status == "passed":  # the single-model path's rule
                st.status, smoke_status = "cached", "passed"
                st.reason = (f"this exact image ({image.image_id[:19]}) passed at {previous.finished_at}; "
                             "--force-smoke reruns")
            else:
                from builder.multi.smoke import smoke_multi

                console.step(f"smoke test ({len(plans)} models, one generate each)")
                result = smoke_multi(image.image_id, [p.name for p in plans], accelerators=opts.accelerators)
                st.details.update(result.model_dump(mode="json"))
                st.status, st.reason, smoke_status = result.status, result.reason, result.status
                ledger.record(ledger.SmokeOutcome(image_id=image.image_id, status=result.status, reason=result.reason,
                                                  accelerators=opts.accelerators), opts.cache_dir)
                if result.status == "failed":
                    raise BuilderError(f"smoke test failed: {result.reason}", stage="smoke")

    with record.timed("publish") as st:
        if not push_image:
            st.status, st.reason = "skipped", "not requested (--push with publish.ecr, publish.registry or --registry)"
        else:
            from builder.publish.recipe import publish_from_recipe

            # the single-model publisher as it is: the smoke gate (ledger by image id), the default tag
            # <name>-<inputs digest 12> from the image's labels, push, verify every tag by the registry
            outcome = publish_from_recipe(image.tags[0], recipe, opts, smoke_status=smoke_status)
            record.published += [t.model_dump(mode="json") for t in outcome.targets]
            st.details["targets"] = [t.model_dump(mode="json") for t in outcome.targets]

    with record.timed("mme") as st:
        from builder.multi.mme import mme_output

        if s3_uri and smoke_status != "passed" and not opts.skip_smoke:
            raise BuilderError(f"not publishing to {s3_uri}: the smoke test {smoke_status}", stage="publish",
                               hint="publish after a passing smoke test, or pass --skip-smoke")
        out = mme_output(plans, record_dir / "mme", s3_uri=s3_uri,
                         stand_in=base_image if first.release.family == "dev-cpu" else None)
        st.details.update(out.model_dump(mode="json"))
        if s3_uri:
            record.published.append({"target": "s3-mme", **out.model_dump(mode="json")})
    console.step(f"built {image.tags[0]} ({', '.join(image.models)}); model archives in {record_dir / 'mme'}")
    for target in record.published:
        if target.get("pinned"):
            console.info(f"published: {target['pinned']}")


def _has_devices(kind: str) -> bool:
    import glob
    import shutil

    return bool(shutil.which("nvidia-smi")) if kind == "gpu" else bool(glob.glob("/dev/neuron*"))
