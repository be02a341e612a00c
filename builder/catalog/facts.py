"""Per-family facts (builder/catalog/families.yaml) as validated data: what the rules, key tables, compile
settings and the LMI differential check used to write as ``family ==`` / ``version_tuple >= (0, 33)`` chains.

A DJL-version threshold is written as the version it starts at ("0.33"); ``since(release, "0.33")`` compares
it with the release's DJL version. Loaded once; a broken file is a bug here and fails loudly at import.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from builder.catalog import version_tuple  # the catalog's one version parser (it loads this module lazily)

if TYPE_CHECKING:
    from builder.catalog import Release

HERE = Path(__file__).parent


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompileFacts(_Data):
    options: dict[str, str]  # compile.<field> -> the option key the partition tool reads
    toolkit_before: str | None = None  # DJL versions below this use the toolkit's keys
    toolkit_options: dict[str, str] = Field(default_factory=dict)
    runtime_rolling_batch: str | None = None  # what the runtime must run a compiled engine with
    build_time_keys: list[str] = Field(default_factory=list)  # options that only matter when building
    output_dir_option: str | None = None  # the option the partition tool writes its output to
    exact_length_option: str | None = None  # an option that must equal compile.max_seq_len
    quantizations: list[str] | None = None  # compile.quantization values the tool accepts (None: any)


class FamilyFacts(_Data):
    removed_backends: dict[str, str] = Field(default_factory=dict)  # rolling_batch -> DJL version gone at
    rewrites_removed: dict[str, str] = Field(default_factory=dict)  # removed backend -> what LMI runs instead
    required_engine: dict[str, str] = Field(default_factory=dict)  # rolling_batch ("*": any) -> engine
    python_engine_with_mpi_mode: bool = False
    handler: str | None = None  # the handler the family always runs (when no custom one)
    key_backends: list[str] | None = None  # None: the rolling_batch's own (auto: every offered one)
    extra_key_backends: list[str] = Field(default_factory=list)
    hf_accelerate: bool = False
    vllm_async_service: bool = False  # the image runs djl_python.lmi_vllm.vllm_async_service
    auto_warning: bool = False
    no_rolling_batch: bool = False
    needs_transformers_for_default_handler: bool = False
    keys_since: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    lmi_validator: str | None = None
    removed_since: str | None = None
    removed_note: str = ""
    compile: CompileFacts | None = None
    display_name: str | None = None  # how messages name the family's engine

    @field_validator("removed_backends", "keys_since", "removed_since")
    @classmethod
    def _versions(cls, value: object) -> object:
        versions = [value] if isinstance(value, str) else list(value.values()) if isinstance(value, dict) else []
        flat = [v for x in versions for v in (x if isinstance(x, dict) else [x])]
        for v in flat:
            if isinstance(v, str) and not version_tuple(v):
                raise ValueError(f"{v!r} is not a DJL version")
        return value

    def removed_at(self, rolling_batch: str, djl_version: str) -> str | None:
        """The DJL version that removed ``rolling_batch`` if ``djl_version`` is at or after it, else None."""
        gone = self.removed_backends.get(rolling_batch)
        return gone if gone is not None and version_tuple(djl_version) >= version_tuple(gone) else None

    def engine_for(self, rolling_batch: str) -> str | None:
        return self.required_engine.get(rolling_batch, self.required_engine.get("*"))

    def keys_added(self, backend: str, djl_version: str) -> set[str]:
        v = version_tuple(djl_version)
        return {k for since, keys in self.keys_since.get(backend, {}).items() if v >= version_tuple(since) for k in keys}


def branch_key(branch: str) -> tuple[int, ...]:
    """'0.36.0-lmi27-dlc' -> (0, 36, 0, 27); '0.35.1-dlc' -> (0, 35, 1, 0): release order of the branches."""
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(?:-lmi(\d+))?-dlc$", branch)
    if not m:
        return (0,)
    return tuple(int(g or 0) for g in m.groups())


def branch_of(release: Release) -> str:
    """The release branch a catalog row was derived from; hand-written rows (cpu, dev-cpu) by DJL version."""
    return release.provenance.get("branch") or f"{release.djl_version}-dlc"


class Span(_Data):
    """The first and last djl-serving release branch whose properties manager has a validator (last None:
    still there on the newest branch read)."""

    first: str
    last: str | None = None

    @field_validator("first", "last")
    @classmethod
    def _branch(cls, value: str | None) -> str | None:
        if value is not None and branch_key(value) == (0,):
            raise ValueError(f"{value!r} is not a djl-serving release branch (0.N.M-dlc or 0.N.M-lmiK-dlc)")
        return value

    def covers(self, release: Release) -> bool:
        b = branch_key(branch_of(release))
        return branch_key(self.first) <= b and (self.last is None or b <= branch_key(self.last))


class Facts(_Data):
    families: dict[str, FamilyFacts]
    latest_branch_read: str
    lmi_validators: dict[str, Span]
    required_entry_point: dict[str, str] = Field(default_factory=dict)  # rolling_batch -> option.entryPoint

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.families)

    def of(self, family: str) -> FamilyFacts:
        """An unknown family (refused by the recipe schema) has no facts: the empty default."""
        return self.families.get(family) or FamilyFacts()


def since(djl_version: str, threshold: str | None) -> bool:
    """Whether a DJL version is at or after a threshold from the facts (None: never)."""
    return threshold is not None and version_tuple(djl_version) >= version_tuple(threshold)


@lru_cache(maxsize=1)
def load_facts() -> Facts:
    return Facts.model_validate(yaml.safe_load((HERE / "families.yaml").read_text()))


FAMILIES: tuple[str, ...] = load_facts().names

__all__ = ["FAMILIES", "CompileFacts", "FamilyFacts", "Facts", "Span", "branch_key", "branch_of", "load_facts",
           "since"]
