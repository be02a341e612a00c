"""The catalog: what each LMI release and instance type is, as validated data (``*.yaml`` here).

Loaded once and validated at start; a broken catalog is a bug in this repository and fails loudly.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

HERE = Path(__file__).parent
DeviceKind = Literal["gpu", "neuron", "cpu"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AotTool(_Data):
    tool: str
    command: list[str]
    args: list[str]
    marker: Literal["trtllm-build-config", "triton-repo", "neuron-config"]
    toolchain_version_cmd: list[str] = Field(default_factory=list)


ReleaseStatus = Literal["current", "not-published"]


class Release(_Data):
    family: str
    # The release's name as a recipe writes it: LMI's own numbering for the lmi family from v11 on
    # ("lmi-27.0.0"; reference/lmi-releases.md §1), the DJL version for the other families.
    version: str
    djl_version: str = ""  # filled from version when a hand-written row leaves it out
    status: ReleaseStatus = "current"
    tag: str | None
    tag_evidence: Literal["documented", "inferred", "local", "not-published"]
    cuda: str | None = None
    python: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)
    serving_features: list[str]
    rolling_batch: list[str]
    default_rolling_batch: str
    default_engine: str
    default_entry_point: str | None
    # PyModel.java's choice when a model names no entryPoint: with async_mode=true (None: the default's),
    # one that wins whatever rolling_batch says (v15), and whether `auto` means disable + async (v17+).
    async_entry_point: str | None = None
    forced_entry_point: str | None = None
    auto_is_async: bool = False
    default_tensor_parallel_degree: str
    default_max_rolling_batch_size: dict[str, int]
    model_loading_timeout: int
    predict_timeout: int
    output_formatters: list[str]
    quantize: dict[str, list[str]] = Field(default_factory=dict)
    aot: AotTool | None = None
    # Where each fact came from (branch, commit, file:line), for rows derived by scripts/derive_releases.py.
    provenance: dict[str, str] = Field(default_factory=dict)

    def model_post_init(self, __context: object) -> None:
        if not self.djl_version:
            object.__setattr__(self, "djl_version", self.version)

    @property
    def label(self) -> str:
        """How messages name the release: 'lmi-27.0.0 (DJL 0.36.0)', 'tensorrt-llm 0.33.0'."""
        if self.djl_version != self.version:
            return f"{self.version} (DJL {self.djl_version})"
        return f"{self.family} {self.version}"

    def max_rolling_batch_default(self, rolling_batch: str) -> int:
        table = self.default_max_rolling_batch_size
        return table.get(rolling_batch, table["default"])

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """The DJL version as a tuple: what version thresholds in the rules compare."""
        return version_tuple(self.djl_version)


class Family(_Data):
    description: str
    repository: str
    registry: str | None = None  # None: the region's DLC ECR registry
    sagemaker_framework: str | None = None
    device_kinds: list[DeviceKind]
    min_compute_capability: str | None = None


class Backend(_Data):
    engine: str | None
    entry_point: str | None


class Instance(_Data):
    name: str  # e.g. g5.12xlarge (no ml. prefix)
    family: str
    accelerator: str
    kind: DeviceKind
    devices: int  # GPUs, NeuronCores, or 1 for CPU
    memory_gib: float  # per device (0 for CPU)
    host_memory_gib: int
    compute_capability: str | None = None
    neuron_arch: str | None = None
    chips: int | None = None

    @property
    def arch(self) -> str:
        if self.kind == "gpu" and self.compute_capability:
            return "sm_" + self.compute_capability.replace(".", "")
        if self.kind == "neuron":
            return self.neuron_arch or "neuron"
        return "cpu"

    @property
    def device_memory_bytes(self) -> int:
        return int(self.memory_gib * (1 << 30))


class Catalog(_Data):
    families: dict[str, Family]
    backends: dict[str, Backend]
    releases: list[Release]
    instances: dict[str, Instance]
    region_accounts: dict[str, str]
    partitions: dict[str, str]

    def release(self, family: str, version: str) -> Release | None:
        """The release a recipe names: by its name, or by a DJL version that names exactly one release of
        the family (``"0.29.0"`` is lmi-11.0.0; ``"0.36.0"`` is ten releases, so None: see ``by_djl``)."""
        exact = next((r for r in self.releases if r.family == family and r.version == version), None)
        if exact is not None:
            return exact
        matches = self.by_djl(family, version)
        return matches[0] if len(matches) == 1 else None

    def by_djl(self, family: str, djl_version: str) -> list[Release]:
        return sorted((r for r in self.releases if r.family == family and r.djl_version == djl_version),
                      key=lambda r: version_tuple(r.version.split("-", 1)[-1]))

    def versions(self, family: str) -> list[str]:
        return [r.version for r in sorted((r for r in self.releases if r.family == family),
                                          key=lambda r: (version_tuple(r.djl_version),
                                                         version_tuple(r.version.split("-", 1)[-1])))]

    def instance(self, instance_type: str) -> Instance | None:
        name = instance_type[3:] if instance_type.startswith("ml.") else instance_type
        return self.instances.get(name)

    def dlc_account(self, region: str) -> str | None:
        return self.region_accounts.get(region)

    def registry_host(self, account: str, region: str) -> str:
        return f"{account}.dkr.ecr.{region}.{self.partitions[partition_of(region)]}"


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def version_tuple(version: str) -> tuple[int, ...]:
    """The numeric dot-separated parts, for ordering: "0.33.0" -> (0, 33, 0), "8.6" -> (8, 6); a part that is
    not all digits is skipped ("0.33.0-lmi15" -> (0, 33)). The one parser of DJL versions,
    release numbers and compute capabilities."""
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _releases(containers: dict, derived: dict) -> list[dict]:
    """Hand-written rows plus derived rows completed by their profile; (family, version) unique."""
    profiles: dict[str, dict] = containers["profiles"]
    profile_of: dict[tuple[str, str], str] = {}
    for profile, families in containers["release_profiles"].items():
        if profile not in profiles:
            raise ValueError(f"release_profiles names an unknown profile {profile!r}")
        for family, versions in families.items():
            for version in versions:
                if (family, version) in profile_of:
                    raise ValueError(f"{family} {version} is listed in two profiles")
                profile_of[(family, version)] = profile
    rows: list[dict] = list(containers["releases"])
    used: set[tuple[str, str]] = set()
    for row in derived["releases"]:
        key = (row["family"], row["version"])
        if key not in profile_of:
            raise ValueError(f"derived release {key[0]} {key[1]} has no profile in containers.yaml")
        rows.append({**profiles[profile_of[key]], **row})
        used.add(key)
    if set(profile_of) - used:
        raise ValueError(f"release_profiles lists releases that were not derived: {sorted(set(profile_of) - used)}")
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row["family"], row["version"])
        if key in seen:
            raise ValueError(f"the catalog has two rows for {key[0]} {key[1]}")
        seen.add(key)
    return rows


# The catalog's data files, relative to the repository root (plan compares them with a git revision).
CATALOG_FILES = ("builder/catalog/containers.yaml", "builder/catalog/releases.derived.yaml",
                 "builder/catalog/instances.yaml", "builder/catalog/regions.yaml")


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    from builder.catalog.facts import load_facts

    catalog = catalog_from_data(*(yaml.safe_load((HERE / Path(rel).name).read_text()) for rel in CATALOG_FILES))
    # families.yaml holds the facts the rules read per family: one entry per family, in the same order
    if tuple(catalog.families) != load_facts().names:
        raise ValueError(f"families.yaml names {list(load_facts().names)} but containers.yaml has "
                         f"{list(catalog.families)}; give every family one entry in both, in the same order")
    return catalog


def catalog_from_data(containers: dict, derived: dict, instances_raw: dict, regions: dict) -> Catalog:
    """The catalog from the parsed data files (in CATALOG_FILES order); also builds an older revision's."""
    instances: dict[str, Instance] = {}
    for fam, spec in instances_raw["families"].items():
        for size, count, host in spec["sizes"]:
            name = f"{fam}.{size}"
            per_chip = spec.get("cores_per_chip")
            instances[name] = Instance(
                name=name, family=fam, accelerator=spec["accelerator"], kind=spec["kind"],
                devices=count * per_chip if per_chip else count, memory_gib=spec["memory_gib"],
                host_memory_gib=host, compute_capability=spec.get("compute_capability"),
                neuron_arch=spec.get("neuron_arch"), chips=count if per_chip else None)
    accounts = {r: regions["default_account"] for r in regions["default_regions"]}
    accounts.update(regions["exceptions"])
    return Catalog(families=containers["families"], backends=containers["backends"],
                   releases=_releases(containers, derived), instances=instances, region_accounts=accounts,
                   partitions=regions["partitions"])


__all__ = ["CATALOG_FILES", "AotTool", "Catalog", "Instance", "Release", "catalog_from_data", "load_catalog",
           "partition_of", "version_tuple"]
