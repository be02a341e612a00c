"""Assemblers side by side: ``docker build`` + ``docker push`` vs registry-native assembly.

``nox -s bench -- assemble [--sizes=1,8] [--shards=1,8] [--no-docker] [--crane=PATH] [--compression=none]``
(use the ``--opt=value`` form: the bench runner takes bare words for suite names)

For each model (default: 1 GiB in 1 file and 8 GiB in 8 shards, random bytes like safetensors),
four scenarios: cold (empty registry and caches), config-only (serving.properties changed), one
shard changed, nothing changed. Seconds and bytes uploaded (from the registry's access log for the
docker path, from the result for ours). A Debian ``docker-registry`` on 127.0.0.1 with a fresh data
folder per model; temporary files are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "assemble.json"
GIB = 1 << 30


def _registry(root: Path):
    from tests.support.registry_fixtures import LocalRegistry, free_port

    root.mkdir(parents=True, exist_ok=True)
    reg = LocalRegistry(root=root, port=free_port())
    reg.write_config()
    reg.start()
    return reg


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 64 << 20)
            fh.write(os.urandom(n))
            left -= n


def _uploaded_bytes(reg, since: int) -> int:
    """Bytes of PATCH/PUT request bodies the registry received (access log ``bytes`` field is the response;
    so count from the request Content-Length the log does not have: fall back to blob sizes)."""
    total = 0
    for line in reg.access_lines(since):
        m = re.search(r'"(PUT|PATCH) /v2/[^ ]+/blobs/uploads/[^"]*" (\d+) ', line)
        if m and m.group(2) in ("201", "202"):
            total += 1
    return total


def _docker_base(host: str, workdir: Path) -> str:
    """A tiny base imported into the engine and pushed, shared by both assemblers."""
    import docker

    client = docker.from_env(timeout=900)
    root = workdir / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "base-release").write_text("bench base\n")
    tar = workdir / "rootfs.tar"
    subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
    repo = f"{host}/bench/base"
    client.api.import_image_from_file(str(tar), repository=repo, tag="1",
                                      changes=["LABEL dev.lmi-builder.managed=true",
                                               "LABEL dev.lmi-builder.role=bench", 'CMD ["/bin/true"]'])
    digest = None
    for event in client.api.push(repo, tag="1", stream=True, decode=True):
        if "error" in event:
            raise RuntimeError(event["error"])
        digest = (event.get("aux") or {}).get("Digest") or digest
    return f"{repo}@{digest}"


def _docker_build_push(ctx: Path, model: Path, props: str, base: str, host: str, tag: str) -> tuple[float, int]:
    import docker

    start = time.monotonic()
    (ctx / "serving.properties").write_text(props)
    lines = [f"FROM {base}"]
    lines += [f"COPY model/{f.name} /opt/ml/model/{f.name}" for f in sorted(model.iterdir())]
    lines += ["COPY serving.properties /opt/ml/model/serving.properties",
              "LABEL dev.lmi-builder.managed=true dev.lmi-builder.role=bench"]
    (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
    ref = f"{host}/bench/docker:{tag}"
    subprocess.run(["docker", "build", "-q", "-t", ref, str(ctx)], check=True, capture_output=True,
                   env={**os.environ, "DOCKER_BUILDKIT": "0"})
    client = docker.from_env(timeout=900)
    pushed = 0
    for event in client.api.push(f"{host}/bench/docker", tag=tag, stream=True, decode=True):
        if "error" in event:
            raise RuntimeError(event["error"])
        if event.get("status") == "Pushed":
            pushed += 1
    return time.monotonic() - start, pushed


def run_model(size_gib: float, shards: int, args, work: Path) -> list[dict]:
    from builder.registry import assemble_in_registry
    from tests.integration.test_assemble_registry import make_resolved

    rows: list[dict] = []
    reg = _registry(work / "registry")
    try:
        model = work / "model"
        model.mkdir()
        per = int(size_gib * GIB) // shards
        for k in range(shards):
            _write_random(model / f"model-{k + 1:05d}-of-{shards:05d}.safetensors", per)
        (model / "config.json").write_text('{"model_type": "bench"}\n')
        base = _docker_base(reg.host, work) if not args.no_docker else None
        if base is None:
            from tests.integration.test_assemble_registry import push_base

            base = push_base(reg.host, "bench/base")
        ctx = work / "ctx"
        ctx.mkdir()
        if not args.no_docker:
            shutil.rmtree(ctx)
            ctx.mkdir()
            (ctx / "model").mkdir()
            for f in model.iterdir():
                os.link(f, ctx / "model" / f.name)  # hard links: the context needs real files
        timeout = [60]

        def props() -> str:
            return f"engine=Python\noption.model_loading_timeout={timeout[0]}\n"

        scenarios = ["cold", "config-only", "one-shard-changed", "nothing-changed"]
        for name in scenarios:
            if name == "config-only":
                timeout[0] += 1
            if name == "one-shard-changed":
                shard = sorted(model.glob("*.safetensors"))[0]
                with open(shard, "r+b") as fh:
                    fh.write(os.urandom(4096))
            row = {"model": f"{size_gib:g} GiB / {shards} shard(s)", "scenario": name}
            if not args.no_docker:
                mark = reg.log_mark()
                secs, pushed = _docker_build_push(ctx, model, props(), base, reg.host, name)
                row["docker_s"] = round(secs, 3)
                row["docker_layers_pushed"] = pushed
                row["docker_upload_requests"] = _uploaded_bytes(reg, mark)
            resolved = make_resolved(work, {"model_loading_timeout": timeout[0]})
            start = time.monotonic()
            res = assemble_in_registry(resolved, registry=f"{reg.host}/bench/registry", base_ref=base, model_dir=model,
                                       compiled_dir=None, extra_files={}, credentials=None, cache_dir=work / "cache",
                                       compression=args.compression)
            row["registry_s"] = round(time.monotonic() - start, 3)
            row["registry_bytes"] = res.bytes_uploaded
            row["registry_layers_uploaded"] = sum(1 for x in res.layers if x.uploaded)
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.crane:
            rows.append(_crane_cold(args.crane, model, reg.host, base, work))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        reg.stop()
        _remove_images(reg.host)
    return rows


def _remove_images(host: str) -> None:
    """Remove only the images this run tagged under its own registry host."""
    try:
        import docker

        client = docker.from_env()
        for image in client.images.list():
            refs = list(image.tags) + list(image.attrs.get("RepoDigests") or [])
            if any(r.startswith(f"{host}/bench/") for r in refs):
                client.images.remove(image.id, force=True)
    except Exception:  # no engine (--no-docker) or already gone
        pass


def _crane_cold(crane: str, model: Path, host: str, base: str, work: Path) -> dict:
    """crane append of the same files (tar written first; crane gzips): cold, then config-only."""
    out = {"model": "crane", "scenario": "cold+config-only"}
    start = time.monotonic()
    tars = []
    for f in sorted(model.glob("*.safetensors")):
        t = work / f"{f.name}.tar"
        subprocess.run(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-C", str(model.parent),
                        "-cf", str(t), f"model/{f.name}"], check=True)
        tars.append(t)
    args = [crane, "append", "--insecure", "-b", base, "-t", f"{host}/bench/crane:1"]
    for t in tars:
        args += ["-f", str(t)]
    subprocess.run(args, check=True, capture_output=True)
    out["crane_cold_s"] = round(time.monotonic() - start, 3)
    cfg = work / "cfg.tar"
    (work / "serving.properties").write_text("engine=Python\n")
    subprocess.run(["tar", "-C", str(work), "-cf", str(cfg), "serving.properties"], check=True)
    start = time.monotonic()
    subprocess.run([crane, "append", "--insecure", "-b", f"{host}/bench/crane:1", "-t", f"{host}/bench/crane:2",
                    "-f", str(cfg)], check=True, capture_output=True)
    out["crane_config_only_s"] = round(time.monotonic() - start, 3)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench assemble")
    p.add_argument("--sizes", default="1,8", help="model sizes in GiB, comma separated (default 1,8)")
    p.add_argument("--shards", default="1,8", help="shards per model, same order as --sizes")
    p.add_argument("--no-docker", action="store_true", help="registry assembler only")
    p.add_argument("--compression", choices=["none", "gzip"], default="none")
    p.add_argument("--crane", default=os.environ.get("LMI_BENCH_CRANE") or shutil.which("crane"),
                   help="crane binary for a comparison row (go install ...crane@v0.22.1)")
    args = p.parse_args(argv)
    sizes = [float(x) for x in args.sizes.split(",")]
    shards = [int(x) for x in args.shards.split(",")]
    if len(sizes) != len(shards):
        print("--sizes and --shards need the same number of entries", file=sys.stderr)
        return 2
    rows: list[dict] = []
    for size, n in zip(sizes, shards, strict=True):
        with tempfile.TemporaryDirectory(prefix="lmi-bench-assemble-") as tmp:
            rows += run_model(size, n, args, Path(tmp))
    print(f"\n{'model':<24}{'scenario':<20}{'docker s':>10}{'registry s':>12}{'registry bytes':>16}")
    for r in rows:
        if "scenario" in r and "registry_s" in r:
            print(f"{r['model']:<24}{r['scenario']:<20}{r.get('docker_s', '-')!s:>10}{r['registry_s']:>12}"
                  f"{r['registry_bytes']:>16}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
