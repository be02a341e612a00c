"""Gzip encoders for registry layers: speed and output ratio, on random bytes and on bf16 weights.

``nox -s bench -- gzip [--mib=1024] [--encoders=stored,zlib-0,zlib-1,isal-0,isal-1,zlib-ng-0,zlib-ng-1]``

Each encoder gets the same input in 1 MiB pieces (as a layer stream feeds it) and makes a gzip
stream; each output piece is decoded (stdlib zlib) and dropped at once, as in an upload. Inputs: ``random`` (``os.urandom``; safetensors of random weights look like this) and
``bf16`` (numpy ``default_rng(0).standard_normal(float32) * 0.02`` rounded to bfloat16 bits, nearest
even: what a trained checkpoint's tensors look like to an encoder). Columns: encode MB/s (10^6 bytes
of input per second of this thread's CPU time, encode calls only; best of two passes when a pass takes
under 3 s), output/input ratio, stdlib zlib decode MB/s of that output (what a
puller pays), and the output's digest prefix. ``isal`` and ``zlib-ng`` rows need those packages
(``pip install isal zlib-ng``; neither is a project dependency): missing ones are reported, not measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "gzip.json"
CHUNK = 1 << 20
ALL = ["stored", "zlib-0", "zlib-1", "isal-0", "isal-1", "zlib-ng-0", "zlib-ng-1"]


def _bf16(n_bytes: int) -> bytes:
    import numpy as np

    rng = np.random.default_rng(0)
    out = bytearray()
    per = CHUNK // 2
    while len(out) < n_bytes:
        u = (rng.standard_normal(per, dtype=np.float32) * np.float32(0.02)).view(np.uint32)
        out += ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()  # round to nearest even
    return bytes(out[:n_bytes])


def _encoder(name: str) -> Callable[[], object] | str:
    """A factory of objects with compress()/flush(), or why it is unavailable."""
    if name == "stored":
        from builder.registry.layerblobs import StoredGzip

        return StoredGzip
    family, _, level = name.rpartition("-")
    try:
        mod = {"zlib": lambda: zlib, "isal": lambda: __import__("isal.isal_zlib", fromlist=["x"]),
               "zlib-ng": lambda: __import__("zlib_ng.zlib_ng", fromlist=["x"])}[family]()
    except ImportError as exc:
        return f"not installed ({exc.name})"
    return lambda: mod.compressobj(int(level), zlib.DEFLATED, 31)


def _pieces(data: bytes) -> Iterator[memoryview]:
    view = memoryview(data)
    for at in range(0, len(data), CHUNK):
        yield view[at:at + CHUNK]


def _one_pass(make: Callable[[], object], data: bytes) -> tuple[float, float, int, str, bool]:
    """Encode piece by piece and decode each output at once, as a stream would (nothing is held, so
    memory is reused like in an upload); only the encode and decode calls are timed, in this thread's
    CPU time (``time.thread_time``): other processes on a shared machine do not count."""
    clock = time.thread_time
    comp = make()
    dec = zlib.decompressobj(31)
    blob, plain = hashlib.sha256(), hashlib.sha256()
    enc_s = dec_s = 0.0
    size = 0
    pieces = list(_pieces(data)) + [None]
    for piece in pieces:
        t0 = clock()
        out = comp.compress(piece) if piece is not None else comp.flush()  # type: ignore[attr-defined]
        t1 = clock()
        back = dec.decompress(out)
        dec_s += clock() - t1
        enc_s += t1 - t0
        size += len(out)
        blob.update(out)
        plain.update(back)
    ok = dec.eof and plain.digest() == hashlib.sha256(data).digest()
    return enc_s, dec_s, size, "sha256:" + blob.hexdigest(), ok


def measure(name: str, data: bytes) -> dict:
    make = _encoder(name)
    if isinstance(make, str):
        return {"encoder": name, "skipped": make}
    runs = [_one_pass(make, data)]
    if runs[0][0] < 3.0:  # best of two for the fast ones
        runs.append(_one_pass(make, data))
    enc_s = min(r[0] for r in runs)
    dec_s = min(r[1] for r in runs)
    _, _, size, digest, ok = runs[0]
    if not all(r[4] for r in runs) or len({r[3] for r in runs}) != 1:
        raise AssertionError(f"{name}: the gzip stream does not decode to its input, or two passes differ")
    return {"encoder": name, "encode_MBps": round(len(data) / enc_s / 1e6, 1), "ratio": round(size / len(data), 4),
            "decode_MBps": round(len(data) / dec_s / 1e6, 1), "out_bytes": size, "digest": digest}


def _baselines(data: bytes) -> dict:
    start = time.thread_time()
    state = 0
    for piece in _pieces(data):
        state = zlib.crc32(piece, state)
    out = {"crc32_MBps": round(len(data) / (time.thread_time() - start) / 1e6, 1)}
    start = time.thread_time()
    h = hashlib.sha256()
    for piece in _pieces(data):
        h.update(piece)
    out["sha256_MBps"] = round(len(data) / (time.thread_time() - start) / 1e6, 1)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench gzip")
    p.add_argument("--mib", type=int, default=1024, help="input size in MiB (default 1024)")
    p.add_argument("--encoders", default=",".join(ALL), help=f"comma separated, of {','.join(ALL)}")
    p.add_argument("--inputs", default="random,bf16", help="random,bf16")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    names = [n for n in args.encoders.split(",") if n]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown encoder(s) {unknown}; known: {ALL}", file=sys.stderr)
        return 2
    n = args.mib << 20
    rows: list[dict] = []
    base: dict[str, dict] = {}
    for kind in args.inputs.split(","):
        data = os.urandom(n) if kind == "random" else _bf16(n)
        base[kind] = _baselines(data)
        for name in names:
            row = {"input": kind, **measure(name, data)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        del data
    print(f"\n{args.mib} MiB per input, 1 MiB pieces, MB/s of one thread's CPU time (zlib {zlib.ZLIB_RUNTIME_VERSION})")
    for kind, b in base.items():
        print(f"  {kind}: crc32 {b['crc32_MBps']} MB/s, sha256 {b['sha256_MBps']} MB/s")
    print(f"{'input':<8}{'encoder':<12}{'encode MB/s':>12}{'ratio':>9}{'decode MB/s':>13}  digest")
    for r in rows:
        if "skipped" in r:
            print(f"{r['input']:<8}{r['encoder']:<12}  {r['skipped']}")
            continue
        print(f"{r['input']:<8}{r['encoder']:<12}{r['encode_MBps']:>12}{r['ratio']:>9}{r['decode_MBps']:>13}"
              f"  {r['digest'][7:19]}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"mib": args.mib, "zlib": zlib.ZLIB_RUNTIME_VERSION, "baselines": base,
                                        "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
