"""Output (a): one deterministic ``<name>.tar.gz`` per model for a SageMaker Multi-Model Endpoint,
in a local folder and optionally under one S3 prefix (the S3 publisher's ``upload_layout``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from builder import console
from builder.multi.layout import ModelPlan, write_tar_gz


class Archive(BaseModel):
    name: str  # the model's name; TargetModel is ``file``'s base name
    file: str
    size: int
    sha256: str
    files: int  # entries (files) inside


class MmeOutput(BaseModel):
    folder: str
    archives: list[Archive]
    image: dict[str, Any]  # builder.publish.s3_publish.StockImage
    ModelDataUrl: str | None = None  # the S3 prefix, with Mode MultiModel
    Mode: str = "MultiModel"
    upload: dict[str, Any] | None = None
    TargetModels: list[str] = Field(default_factory=list)


def write_archives(plans: list[ModelPlan], folder: Path) -> list[Archive]:
    out = []
    for plan in plans:
        files = plan.layout()
        dest = folder / f"{plan.name}.tar.gz"
        digest = write_tar_gz(files, dest)
        out.append(Archive(name=plan.name, file=str(dest), size=dest.stat().st_size, sha256=digest, files=len(files)))
        console.info(f"  {dest} ({dest.stat().st_size / 1024:.1f} KiB, {len(files)} files, sha256 {digest[:12]})")
    return out


def mme_output(plans: list[ModelPlan], folder: Path, *, s3_uri: str | None = None, s3: Any = None,
               stand_in: str | None = None) -> MmeOutput:
    """Write the archives into ``folder`` (and upload them under ``s3_uri``); describe the deployment."""
    from builder.publish.s3_publish import stock_image

    console.step(f"multi-model endpoint archives -> {folder}")
    archives = write_archives(plans, folder)
    image = stock_image(plans[0].resolved.to_json()["container"], stand_in=stand_in).model_dump(mode="json")
    result = MmeOutput(folder=str(folder), archives=archives, image=image,
                       TargetModels=[Path(a.file).name for a in archives])
    if s3_uri:
        from builder.publish.s3_artifacts import log_report, upload_layout
        from builder.publish.s3_layout import LayoutFile

        files = [LayoutFile(name=Path(a.file).name, size=a.size, sha256=a.sha256, path=Path(a.file), kind="model")
                 for a in archives]
        console.step(f"upload {len(files)} model archives to {s3_uri}")
        report = upload_layout(files, s3_uri, s3=s3)
        log_report(report)
        result.upload = report.model_dump(mode="json")
        result.ModelDataUrl = report.uri
    return result
