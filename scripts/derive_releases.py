#!/usr/bin/env python3
"""Derive the per-release facts of the catalog from djl-serving's own release branches.

    python scripts/derive_releases.py --djl-serving /path/to/djl-serving[.git] \
        [-o builder/catalog/releases.derived.yaml] [--check]

Reads each release branch with ``git show BRANCH:PATH`` (a bare mirror or a checkout both work; nothing
is checked out, nothing of djl-serving is copied: only version strings are extracted). For every fact it
records the file and line it came from, so a reader can check each cell against upstream. What a branch
says is the only source: a release's row never borrows a value from a neighbouring release.

Image tags: a tag is ``documented`` when the text ``djl-inference:<tag>`` naming that release appears in
the docs of any release branch (the branch and path are recorded); otherwise the tag is what the release
branch builds in the documented scheme (``<djl>-lmi<N>.0.0-<cuda_version ARG>``) and is marked
``inferred``. Digests are never derived: bake resolves and records them.

``--check`` re-derives and exits 1 when the committed file differs (a maintainer's drift check).
The mapping of LMI release to branch is reference/lmi-releases.md §1.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/, also when a test loads this file by path
from upstream_git import Repo, is_repository

# (family, release name, branch, status). LMI's own numbering for the lmi family (reference §1);
# the other families are named by their DJL version, which is unique within them.
RELEASES: list[tuple[str, str, str, str]] = [
    *[("lmi", f"lmi-{n}.0.0", b, "current") for n, b in [
        (11, "0.29.0-dlc"), (12, "0.30.0-dlc"), (13, "0.31.0-dlc"), (14, "0.32.0-dlc"), (15, "0.33.0-dlc"),
        (16, "0.34.0-dlc"), (17, "0.35.0-dlc")]],
    *[("lmi", f"lmi-{n}.0.0", f"0.36.0-lmi{n}-dlc", "current") for n in range(18, 28)],
    ("tensorrt-llm", "0.29.0", "0.29.0-dlc", "current"),
    ("tensorrt-llm", "0.30.0", "0.30.0-dlc", "current"),
    ("tensorrt-llm", "0.32.0", "0.32.0-dlc", "current"),
    ("tensorrt-llm", "0.33.0", "0.33.0-dlc", "current"),
    # Branches 0.35 ... v27 build TRT-LLM 1.0.0, but no image tag was published for it and its CI tests are
    # commented out (.github/workflows/integration.yml; reference §1): recorded so a recipe gets that fact.
    ("tensorrt-llm", "0.35.0", "0.35.0-dlc", "not-published"),
    ("neuronx", "0.29.0", "0.29.0-dlc", "current"),
    ("neuronx", "0.30.0", "0.30.0-dlc", "current"),
]

DOCKERFILES = {"lmi": "serving/docker/lmi.Dockerfile", "tensorrt-llm": "serving/docker/tensorrt-llm.Dockerfile",
               "neuronx": "serving/docker/pytorch-inf2.Dockerfile"}
# Requirement files, most specific first: a library is taken from the first file that names it.
REQUIREMENTS = {"lmi": ["serving/docker/lmi-container-requirements.txt", "serving/docker/requirements-vllm.txt",
                        "serving/docker/lmi-container-requirements-common.txt", "serving/docker/requirements-lmi.txt"],
                "tensorrt-llm": [], "neuronx": []}
# library name in the catalog -> names it goes by in Dockerfile ARGs / wheels / requirement lines
LIBRARIES = {
    "lmi": {"torch": ["torch"], "vllm": ["vllm"], "transformers": ["transformers"], "lmi_dist": ["lmi_dist"],
            "peft": ["peft"], "optimum": ["optimum"], "autoawq": ["autoawq"], "lmcache": ["lmcache"]},
    "tensorrt-llm": {"tensorrt_llm": ["trtllm", "tensorrt_llm"], "tensorrt": ["tensorrtlibs"],
                     "trtllm_toolkit": ["trtllm_toolkit"], "modelopt": ["modelopt"], "transformers": ["transformers"],
                     "torch": ["TORCH", "torch"]},
    "neuronx": {"neuron_sdk": ["neuronsdk"], "torch_neuronx": ["torch_neuronx"],
                "transformers_neuronx": ["transformers_neuronx"], "neuronx_cc": ["neuronx_cc"],
                "neuronx_distributed": ["neuronx_distributed"], "optimum_neuron": ["optimum_neuron"],
                "transformers": ["transformers"], "torch": ["torch"], "vllm": ["vllm"]},
}
TAG_TEXT = re.compile(r"djl-inference:([0-9][A-Za-z0-9._-]*[A-Za-z0-9])")


def _version_of(text: str) -> str:
    return text.replace("%2B", "+").lstrip("v")


def _find_arg(lines: list[str], names: list[str]) -> tuple[str, int] | None:
    for name in names:
        for i, line in enumerate(lines, 1):
            m = re.match(rf"^ARG {re.escape(name)}_version=\"?([^\s\"]+)\"?\s*$", line)
            if m and "$" not in m.group(1):
                return _version_of(m.group(1)), i
            m = re.match(rf"^ARG {re.escape(name)}_wheel=\"?\S*/{re.escape(name)}-([0-9][^-\s\"]*)-", line)
            if m:
                return _version_of(m.group(1)), i
    return None


def _find_requirement(lines: list[str], names: list[str]) -> tuple[str, int] | None:
    for name in names:
        for i, raw in enumerate(lines, 1):
            line = raw.split("#", 1)[0].strip()
            m = re.match(rf"^{re.escape(name)}==([^\s;,]+)", line)
            if m:
                return _version_of(m.group(1)), i
            m = re.search(rf"/{re.escape(name)}-([0-9][^-\s]*)-(?:cp|py)\S*\.whl$", line)
            if m:
                return _version_of(m.group(1)), i
            # a range ("transformers >= 4.56.0, < 5") is recorded as written: the release pins no version
            m = re.match(rf"^{re.escape(name)}\s*([<>=!~][^;#]*)$", line)
            if m:
                return re.sub(r"\s+", "", m.group(1)), i
    return None


def _notes_version(notes: str | None, number: str, library: str) -> tuple[str, int] | None:
    """``* vLLM has been upgraded to `X``` in the release's own section of release_notes.md (only on its branch)."""
    if notes is None:
        return None
    section = None
    for i, line in enumerate(notes.splitlines(), 1):
        if line.startswith("## "):
            section = re.search(r"LMI V(\d+)\b", line, re.I)
            section = section.group(1) if section else None
        elif section == number and (m := re.search(rf"{library} has been upgraded to `([^`]+)`", line, re.I)):
            return m.group(1), i
    return None


def derive_release(repo: Repo, family: str, name: str, branch: str, status: str,
                   doc_tags: dict[str, str]) -> dict[str, Any]:
    dockerfile_path = DOCKERFILES[family]
    dockerfile = repo.show(branch, dockerfile_path)
    if dockerfile is None:
        raise SystemExit(f"{branch}: no {dockerfile_path}")
    lines = dockerfile.splitlines()
    provenance: dict[str, str] = {}
    row: dict[str, Any] = {"family": family, "version": name, "djl_version": branch.split("-", 1)[0],
                           "status": status}

    def arg(pattern: str) -> tuple[str, int] | None:
        for i, line in enumerate(lines, 1):
            m = re.match(pattern, line)
            if m:
                return m.group(1), i
        return None

    cuda = arg(r"^ARG version=(\d+\.\d+\.\d+)-")
    if cuda:
        row["cuda"], provenance["cuda"] = cuda[0], f"{dockerfile_path}:{cuda[1]}"
    cuda_tag = arg(r"^ARG cuda_version=(cu\d+)")
    python = arg(r"^ARG python_version=([\d.]+)")
    if python:
        row["python"], provenance["python"] = python[0], f"{dockerfile_path}:{python[1]}"
    features = arg(r"^ENV SERVING_FEATURES=(\S+)")
    row["serving_features"] = features[0].split(",") if features else []
    if features:
        provenance["serving_features"] = f"{dockerfile_path}:{features[1]}"

    libraries: dict[str, str] = {}
    req_files = [(p, repo.show(branch, p)) for p in REQUIREMENTS[family]]
    for lib, aliases in LIBRARIES[family].items():
        found = None
        for path, text in req_files:
            if text is not None and (hit := _find_requirement(text.splitlines(), aliases)):
                found = (hit[0], f"{path}:{hit[1]}")
                break
        if found is None and (hit := _find_arg(lines, aliases)):
            found = (hit[0], f"{dockerfile_path}:{hit[1]}")
        if found is None and (hit := _find_requirement([ln.strip() for ln in lines], aliases)):
            found = (hit[0], f"{dockerfile_path}:{hit[1]}")
        if found is None:  # e.g. "RUN pip3 install torch==2.6.0 ..." in the Dockerfile
            for i, line in enumerate(lines, 1):
                m = re.search(rf"\b(?:{'|'.join(map(re.escape, aliases))})==([0-9][^\s$]*)", line)
                if m and "${" not in m.group(0):
                    found = (_version_of(m.group(1)), f"{dockerfile_path}:{i}")
                    break
        if found is None and family == "lmi" and lib == "vllm":
            # 0.35.0-dlc pins no vLLM (it arrives with vllm_extensions_package); its release notes name it.
            notes_path = "serving/docs/lmi/release_notes.md"
            if hit := _notes_version(repo.show(branch, notes_path), name.split("-")[1].split(".")[0], "vLLM"):
                found = (hit[0], f"{notes_path}:{hit[1]}")
        if found:
            libraries[lib], provenance[f"libraries.{lib}"] = found
    row["libraries"] = libraries

    if family == "lmi":
        number = name.split("-")[1].split(".")[0]
        prefix = f"{row['djl_version']}-lmi{number}.0.0-"
    elif family == "tensorrt-llm":
        prefix = f"{row['djl_version']}-tensorrtllm{libraries.get('tensorrt_llm', '?').split('rc')[0]}-"
    else:
        prefix = f"{row['djl_version']}-neuronx-sdk{libraries.get('neuron_sdk', '?')}"
    documented = sorted(t for t in doc_tags if t.startswith(prefix))
    if status == "not-published":
        row["tag"], row["tag_evidence"] = None, "not-published"
    elif documented:
        row["tag"], row["tag_evidence"] = documented[-1], "documented"
        provenance["tag"] = doc_tags[documented[-1]]
    elif cuda_tag and family != "neuronx":
        row["tag"], row["tag_evidence"] = prefix + cuda_tag[0], "inferred"
        provenance["tag"] = f"not in any branch's docs; scheme <djl>-…-<cuda_version> from {dockerfile_path}:{cuda_tag[1]}"
    else:
        row["tag"], row["tag_evidence"] = None, "not-documented"
    row["provenance"] = {"branch": branch, "commit": repo.commit(branch), **provenance}
    return row


def documented_tags(repo: Repo) -> dict[str, str]:
    """Every ``djl-inference:<tag>`` in the docs of every release branch -> where it was first seen."""
    seen: dict[str, str] = {}
    for branch in sorted(repo.branches()):
        if not re.match(r"^0\.\d+\.\d+-(lmi\d+-)?dlc$", branch):
            continue
        out = repo.git("grep", "-oE", TAG_TEXT.pattern, branch, "--", "serving/docs", check=False)  # 1: none
        for line in out.splitlines():
            _, path, text = line.split(":", 2)
            m = TAG_TEXT.search(text)
            if m:
                seen.setdefault(m.group(1), f"{branch}:{path}")
    return seen


def derive(repo: Repo) -> dict[str, Any]:
    tags = documented_tags(repo)
    rows = [derive_release(repo, *spec, tags) for spec in RELEASES]
    return {"releases": rows}


HEADER = ("# Generated by scripts/derive_releases.py from djl-serving's release branches: do not edit by hand;\n"
          "# rerun it (the command is in that script's docstring). Each row's provenance names the branch, its\n"
          "# commit and the file:line of every fact.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--djl-serving", required=True, type=Path, help="djl-serving checkout or bare mirror")
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).resolve().parent.parent / "builder/catalog/releases.derived.yaml")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file differs")
    args = parser.parse_args(argv)
    if not is_repository(args.djl_serving):
        parser.error(f"--djl-serving {args.djl_serving}: not a git checkout or bare repository")
    text = HEADER + yaml.safe_dump(derive(Repo(args.djl_serving)), sort_keys=False, width=120)
    if args.check:
        same = args.output.is_file() and args.output.read_text() == text
        print(f"{args.output}: {'up to date' if same else 'differs from what the branches say'}", file=sys.stderr)
        return 0 if same else 1
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text.splitlines())} lines)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
