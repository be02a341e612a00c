"""Stand-in toolchain images: the rootfs test base + the stand-in partition tools and toolchain modules,
one image per (tensorrt_llm, neuronx-cc) version pair. Built without pulling; labelled as test equipment."""

from __future__ import annotations

from pathlib import Path

from builder import labels as L

HERE = Path(__file__).parent / "standin"
REPOSITORY = "lmi-build-test/standin-toolchain"
DOCKERFILE = """FROM {base}
COPY partition/ /opt/djl/partition/
COPY site/ /usr/local/lib/python3.11/dist-packages/
COPY dockerd-entrypoint.sh /usr/local/bin/dockerd-entrypoint.sh
RUN ln -sf /usr/bin/python3 /usr/local/bin/python && chmod 0755 /usr/local/bin/dockerd-entrypoint.sh
ENV STANDIN_TRTLLM_VERSION={trtllm} STANDIN_NEURONXCC_VERSION={neuronxcc}
ENTRYPOINT ["/usr/local/bin/dockerd-entrypoint.sh"]
CMD ["serve"]
"""


def build_standin(client, base: str, *, trtllm: str, neuronxcc: str = "2.14.227.0") -> str:
    """Build (or reuse) the stand-in image; returns its image id (``sha256:...``)."""
    from builder.engine import build, tar_context

    files = {"Dockerfile": DOCKERFILE.format(base=base, trtllm=trtllm, neuronxcc=neuronxcc).encode(),
             "dockerd-entrypoint.sh": (HERE / "dockerd-entrypoint.sh").read_bytes()}
    for sub in ("partition", "site"):
        for f in sorted((HERE / sub).rglob("*.py")):
            files[f"{sub}/{f.relative_to(HERE / sub).as_posix()}"] = f.read_bytes()
    tag = f"{REPOSITORY}:trtllm{trtllm}-neuronxcc{neuronxcc}"
    return build(client, tar_context(files), what=tag, stage="test", tag=tag, network_mode=None,
                 labels={L.MANAGED: "true", L.ROLE: "test-equipment", f"{L.NS}.test": "compile-standin"}).image_id
