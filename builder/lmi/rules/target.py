"""Container release, instance type and region: does the catalog know them, and do they fit together."""

from __future__ import annotations

import difflib

from builder.catalog import version_tuple
from builder.catalog.facts import load_facts
from builder.lmi.rules.base import Ctx, check, rule

UNKNOWN_RELEASE = rule("unknown-release", "container.version must be a release of container.family in the catalog",
                       "use one of the listed versions (builder/catalog/containers.yaml)", "§2, §12")
RELEASE_UNPUBLISHED = rule("release-unpublished", "the release's branch builds an image that was never published "
                           "(TensorRT-LLM 1.0 on 0.35+)", "pick a published release, or pin container.image to "
                           "your own build", "reference/lmi-releases.md §1")
UNKNOWN_INSTANCE = rule("unknown-instance", "target.instance_type must be in the instance catalog",
                        "use the suggested name, or add the type to builder/catalog/instances.yaml", "§12")
UNKNOWN_REGION = rule("unknown-region", "target.region must have a known DLC registry account",
                      "use a region listed in builder/catalog/regions.yaml", "§12")
@check("release")
def check_release(ctx: Ctx) -> None:
    c = ctx.recipe.container
    if ctx.release is None:
        several = ctx.catalog.by_djl(c.family, c.version)
        if len(several) > 1:
            # Since LMI v18 every release carries DJL 0.36.0 (reference/lmi-releases.md §1): the DJL version
            # does not say which container (vLLM, torch, CUDA, option keys) the recipe means.
            names = [r.version for r in several]
            ctx.error(("container", "version"), UNKNOWN_RELEASE,
                      f"container.version '{c.version}' is the DJL version of {len(several)} {c.family} releases "
                      f"({', '.join(names)}), each with its own vLLM, torch, CUDA and option keys; name the release "
                      f"you deploy, e.g. version: \"{names[-1]}\"")
            return
        known = ctx.catalog.versions(c.family)
        elsewhere = [r.family for r in ctx.catalog.releases if r.version == c.version]
        hint = f" ({c.version} exists for family {', '.join(sorted(set(elsewhere)))})" if elsewhere else ""
        facts = load_facts().of(c.family)  # a family gone from a DJL version on says so (families.yaml)
        gone = facts.removed_since is not None and version_tuple(c.version) >= version_tuple(facts.removed_since)
        removed = f"; {facts.removed_note}" if gone else ""
        ctx.error(("container", "version"), UNKNOWN_RELEASE,
                  f"container.version '{c.version}' is not a known {c.family} release{hint}{removed}; "
                  f"known {c.family} versions: {', '.join(known)}")
        return
    if ctx.release.status == "not-published" and c.image is None:
        ctx.error(("container", "version"), RELEASE_UNPUBLISHED,
                  f"{ctx.release.label} is built by its release branch "
                  f"({ctx.release.provenance.get('branch', '?')}) but no image was published for it; pick a published "
                  f"release ({', '.join(v for v in ctx.catalog.versions(c.family) if ctx.catalog.release(c.family, v).status == 'current')}) "
                  "or set container.image to an image you built, pinned by digest")


@check("instance")
def check_instance(ctx: Ctx) -> None:
    t = ctx.recipe.target
    if ctx.instance is None:
        name = t.instance_type[3:] if t.instance_type.startswith("ml.") else t.instance_type
        close = difflib.get_close_matches(name, list(ctx.catalog.instances), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr('ml.' + c) for c in close)}?" if close else \
            f"; known families: {', '.join(sorted({i.family for i in ctx.catalog.instances.values()}))}"
        ctx.error(("target", "instance_type"), UNKNOWN_INSTANCE,
                  f"unknown instance type '{t.instance_type}'{hint}")


@check("region")
def check_region(ctx: Ctx) -> None:
    region = ctx.recipe.target.region
    fam = ctx.catalog.families.get(ctx.family)
    if region and fam and fam.registry is None and ctx.recipe.container.image is None \
            and ctx.catalog.dlc_account(region) is None:
        close = difflib.get_close_matches(region, list(ctx.catalog.region_accounts), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        ctx.error(("target", "region"), UNKNOWN_REGION,
                  f"no LMI DLC registry account is known for region '{region}'{hint} "
                  "(or pin container.image to an image you can pull)")
