"""The container family against the instance's accelerator: runs after every other check (a fit error and
another rule's diagnostic at container.family keep that order). The verdict itself is ``Derived.fits``."""

from __future__ import annotations

from builder.lmi.rules.base import Ctx, check, rule

FAMILY_ACCELERATOR = rule("family-accelerator", "the container family must run on the instance's accelerator "
                          "(no TensorRT-LLM on Inferentia, no NeuronX on GPUs, LMI GPU images need a GPU)",
                          "pick an instance of the right kind or the family built for it", "§12, §17.5")
TRTLLM_CC = rule("trtllm-compute-capability", "TensorRT-LLM needs a GPU of compute capability >= 8.0",
                 "use g5/g6/g6e/p4d/p5 (A10G, L4, L40S, A100, H100) or the lmi family", "§12")


@check("fit", needs=("release", "instance"))
def check_fit(ctx: Ctx) -> None:
    inst, fam = ctx.instance, ctx.catalog.families.get(ctx.family)
    if ctx.derived.fits or inst is None or fam is None:
        return
    if inst.kind not in fam.device_kinds:
        suggestion = {"gpu": "lmi or tensorrt-llm", "neuron": "neuronx", "cpu": "cpu or dev-cpu"}[inst.kind]
        ctx.error(("container", "family"), FAMILY_ACCELERATOR,
                  f"family '{ctx.family}' runs on {'/'.join(fam.device_kinds)} but {inst.name} has "
                  f"{inst.accelerator} ({inst.kind}); use family {suggestion} for this instance, or an instance "
                  f"with a {'/'.join(fam.device_kinds)} accelerator")
        return
    # the right kind of accelerator, yet no fit: base._fits found the GPU's compute capability too low
    assert fam.min_compute_capability and inst.compute_capability
    ctx.error(("target", "instance_type"), TRTLLM_CC,
              f"{ctx.family} needs compute capability >= {fam.min_compute_capability}; {inst.name} has "
              f"{inst.accelerator} (sm_{inst.compute_capability.replace('.', '')}); use a g5, g6, g6e, p4d or "
              "p5 instance, or the lmi family")
