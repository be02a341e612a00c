"""The multi-model recipe shape: today's ``model:`` mapping per entry, plus ``name`` and ``serving``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from builder.recipe.model import (
    NAME_RE,
    Compile,
    Container,
    ModelSource,
    Publish,
    Serving,
    Smoke,
    Strict,
    Target,
)

MAX_MODELS = 32
ModelName = Annotated[str, StringConstraints(pattern=NAME_RE, max_length=63)]


class ModelEntry(ModelSource):
    """One model: a model source exactly as ``model:`` (id | s3 | path, revision, ...) and its own serving."""

    name: ModelName = Field(description="folder under the model store and the MME model name; [a-z0-9._-]")
    serving: Serving = Field(default_factory=Serving)


class MultiRecipe(Strict):
    name: Annotated[str, StringConstraints(pattern=NAME_RE, max_length=63)]
    description: str = ""
    models: list[ModelEntry] = Field(min_length=1, max_length=MAX_MODELS)
    container: Container
    target: Target
    compile: Compile = Field(default_factory=Compile)
    smoke: Smoke = Field(default_factory=Smoke)
    publish: Publish = Field(default_factory=Publish)
    env: dict[str, str] = Field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]
