"""Multi-model archives under one S3 prefix, against moto's server mode on 127.0.0.1 (boto3's
standard configuration, AWS_ENDPOINT_URL_S3): every archive uploaded, an unchanged re-publish sends
nothing, a change to one model's serving section sends that model's archive only."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from builder.cli import main
from builder.multi.layout import fetch, plan_models
from builder.multi.loader import load_multi
from builder.multi.mme import mme_output
from builder.paths import REPO_DIR

EXAMPLE = REPO_DIR / "recipes/examples/multi-model-quickstart.yaml"


def _plans(recipe: Path, cache: Path):
    return fetch(plan_models(load_multi(recipe)), cache_dir=cache)  # fetch returns new plans


def test_archives_under_one_prefix_upload_only_what_changed(moto_s3, tmp_path: Path, capsys) -> None:
    work = tmp_path / "recipes"
    shutil.copytree(REPO_DIR / "recipes/examples/quickstart", work / "quickstart",
                    ignore=shutil.ignore_patterns("__pycache__"))
    recipe = work / "multi.yaml"
    recipe.write_text(EXAMPLE.read_text())
    uri = f"s3://{moto_s3.bucket}/mme/"
    rc = main(["mme", str(recipe), "-o", str(tmp_path / "out"), "--s3", uri, "--cache-dir", str(tmp_path / "c")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    answer = json.loads(out.out)
    assert answer["ModelDataUrl"] == uri and answer["Mode"] == "MultiModel"
    assert answer["TargetModels"] == ["alpha.tar.gz", "beta.tar.gz"]
    s3 = moto_s3.client()
    for archive in answer["archives"]:
        body = s3.get_object(Bucket=moto_s3.bucket, Key=f"mme/{Path(archive['file']).name}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == archive["sha256"] == \
            hashlib.sha256(Path(archive["file"]).read_bytes()).hexdigest()

    counting = moto_s3.counting()
    mme_output(_plans(recipe, tmp_path / "c"), tmp_path / "again", s3_uri=uri, s3=counting)
    assert moto_s3.writes() == 0  # deterministic archives: nothing new to send

    recipe.write_text(EXAMPLE.read_text().replace("model_loading_timeout: 90", "model_loading_timeout: 120"))
    moto_s3.reset()
    result = mme_output(_plans(recipe, tmp_path / "c"), tmp_path / "changed", s3_uri=uri, s3=counting)
    assert moto_s3.writes() == 1
    assert [o["key"] for o in result.upload["objects"] if o["action"] == "uploaded"] == ["mme/beta.tar.gz"]
    assert result.archives[0].sha256 == answer["archives"][0]["sha256"]
    assert result.archives[1].sha256 != answer["archives"][1]["sha256"]
