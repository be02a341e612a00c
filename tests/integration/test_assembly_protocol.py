"""Both assemblers satisfy the one protocol (builder/assembly): the same AssemblyRequest (the quickstart
recipe, its model and handler), one result type with the same fields filled, the same identity, and
each one's ``reference`` / ``image_id`` what smoke and publish use (the engine's id of the registry's
image is its config digest, checked by pulling it)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from builder.assembly import ASSEMBLERS, AssembledImage, AssemblyRequest, assemble
from builder.lmi.resolve import resolve
from builder.paths import REPO_DIR
from builder.recipe import load_or_raise
from tests.integration.test_assemble_registry import push_base

pytestmark = [pytest.mark.docker, pytest.mark.registry]

QUICKSTART = REPO_DIR / "recipes" / "examples" / "quickstart.yaml"


def _request(tmp: Path, host: str, base: str, run: str) -> AssemblyRequest:
    """The quickstart recipe under a name of this run's (its tag is this test's alone)."""
    shutil.copytree(QUICKSTART.parent / "quickstart", tmp / "quickstart")
    data = yaml.safe_load(QUICKSTART.read_text())
    (tmp / "quickstart.yaml").write_text(yaml.safe_dump({**data, "name": f"protocol-{run}"}))
    loaded = load_or_raise(tmp / "quickstart.yaml")
    return AssemblyRequest(resolved=resolve(loaded.recipe), model_dir=tmp / "quickstart" / "model",
                           model_digest="sha256:" + "e" * 64, extra_files={"model.py": tmp / "quickstart" / "model.py"},
                           base_image=base, registry=f"{host}/protocol/{run}", recipe_file=tmp / "quickstart.yaml",
                           progress=False)


def _filled(image: AssembledImage) -> dict[str, bool]:
    """Which of the fields both assemblers must fill are filled."""
    return {"reference": bool(image.reference), "image_id": image.image_id.startswith("sha256:"),
            "identity": image.identity.digest.startswith("sha256:"), "base.reference": bool(image.base.reference),
            "base.digest": image.base.digest.startswith("sha256:"), "base.pin": bool(image.base.pin),
            "layers": bool(image.layers) and all(x.digest and x.size > 0 for x in image.layers),
            "bytes_sent": image.bytes_sent > 0, "seconds": image.seconds >= 0}


def test_both_assemblers_answer_one_request_with_one_result_type(docker_client, local_registry, tmp_path):
    host, run = local_registry.host, uuid.uuid4().hex[:8]
    base = push_base(host, f"base/protocol-{run}")
    made: list[str] = [base]
    try:
        for event in docker_client.api.pull(base.split("@")[0], tag=base.split("@")[1], stream=True, decode=True):
            assert "error" not in event, event  # the docker assembler builds FROM the same base, pulled
        request = _request(tmp_path, host, base, run)
        first = {name: ASSEMBLERS[name](request.model_copy(update={"cache_dir": tmp_path / f"cache-{name}"}))
                 for name in ("docker", "registry")}
        docker, registry = first["docker"], first["registry"]
        made += [*docker.tags, *([docker.artifacts_ref] if docker.artifacts_ref else [])]

        for name, image in first.items():
            assert type(image) is AssembledImage and image.assembler == name
            assert all(_filled(image).values()), (name, _filled(image))
            assert not image.reused
        # one identity from the same inputs; the same planned layers (the registry lists the base's too)
        assert docker.identity == registry.identity and docker.base.digest == registry.base.digest
        ours = [(x.name, x.kind, x.files) for x in registry.layers if x.kind != "base"]
        assert ours == [(x.name, x.kind, x.files) for x in docker.layers]
        assert docker.tags[0] == docker.identity.tag(request.resolved.recipe.name)

        # docker: the reference is the local image id, tagged <name>:<digest12>
        assert docker.reference == docker.image_id == docker_client.api.inspect_image(docker.tags[0])["Id"]
        # registry: the pinned manifest, and its config digest is the engine's id once pulled
        assert registry.reference == f"{host}/protocol/{run}@{registry.digest}" and registry.tags == []
        manifest = requests.get(f"http://{host}/v2/protocol/{run}/manifests/{registry.digest}", timeout=10,
                                headers={"Accept": registry.media_type or ""}).json()
        assert manifest["config"]["digest"] == registry.image_id
        for event in docker_client.api.pull(f"{host}/protocol/{run}", tag=registry.digest, stream=True, decode=True):
            assert "error" not in event, event
        made.append(registry.reference)
        assert docker_client.api.inspect_image(registry.reference)["Id"] == registry.image_id

        # the build record's image section keeps the keys each assembler wrote before (tests and tools read them)
        d, r = docker.model_dump(mode="json"), registry.model_dump(mode="json")
        assert all(d[k] not in (None, []) for k in ("image_id", "tags", "artifacts_ref", "bytes_sent"))
        assert d["identity"]["digest"] == r["identity"]["digest"] and r["inputs"]["manifest_format"] == "docker"
        assert all(r[k] for k in ("reference", "digest", "media_type", "repository")) and r["base"]["reference"] == base

        again = {name: assemble(name, request.model_copy(update={"cache_dir": tmp_path / f"cache-{name}"}))
                 for name in ("docker", "registry")}
        for name, image in again.items():
            assert image.reused and image.identity == first[name].identity, name
            assert image.reference == first[name].reference and image.image_id == first[name].image_id, name
        assert again["docker"].bytes_sent == 0 and again["registry"].bytes_sent == 0
    finally:
        for ref in reversed(made):
            try:
                docker_client.images.remove(ref, force=True)
            except Exception:  # already gone, or never made
                pass

