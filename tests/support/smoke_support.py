"""Helpers (no tests) for the smoke/serve integration tests. Model images: FROM the dev-cpu runtime, a test handler
(+ serving.properties) COPYed into /opt/ml/model, labelled like a built image (smoke settings,
recipe target, family). Removed by the fixture that made them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from builder import labels as L
from tests.support.docker_fixtures import TEST_LABEL  # what the leftover sweeps look for

HANDLERS = Path(__file__).resolve().parents[1] / "integration" / "handlers"  # the test handlers


def build_model_image(client, runtime_ref: str, handler: Path, *, smoke: dict | None = None,
                      target_kind: str = "cpu", props: str = "option.model_loading_timeout=60\n",
                      example_model: bool = False, run_id: str = "") -> str:
    from builder import engine

    files: dict[str, bytes] = {"model/model.py": handler.read_bytes(), "model/serving.properties": props.encode()}
    if example_model:
        import tempfile

        from builder.examples.quickstart import write_example_model

        with tempfile.TemporaryDirectory() as tmp:
            for p in write_example_model(tmp):
                files[f"model/{Path(p).name}"] = Path(p).read_bytes()
    files["Dockerfile"] = f"FROM {runtime_ref}\nCOPY model/ /opt/ml/model/\n".encode()
    tag = f"lmi-builder-test/smoke-{uuid.uuid4().hex[:10]}:latest"
    recipe = {"name": "smoke-test", "target": {"kind": target_kind, "devices": 1 if target_kind != "cpu" else 0},
              "container": {"family": "dev-cpu"}}
    labels = {L.MANAGED: "true", L.ROLE: "model", TEST_LABEL: run_id or "smoke", L.LMI_FAMILY: "dev-cpu",
              L.DEV_RUNTIME: "true", L.RECIPE_JSON: json.dumps(recipe),
              L.SMOKE: json.dumps({"prompt": "the quick brown fox", "max_new_tokens": 8,
                                   "readiness_timeout_s": 60, "request_timeout_s": 30, **(smoke or {})})}
    engine.build(client, engine.tar_context(files), what=tag, stage="test", tag=tag, labels=labels,
                 network_mode=None)
    return tag


def remove_image(client, tag: str) -> None:
    import docker.errors

    try:
        client.api.remove_image(tag, force=True)
    except docker.errors.NotFound:
        pass


def run_containers(client, run_id: str) -> list[dict]:
    return client.api.containers(all=True, filters={"label": f"{L.SMOKE_RUN}={run_id}"})
