"""Experiment configs: which datasets, variants and seeds a grid holds, and where each run lives.

An experiment config (``configs/experiments/*.yaml``) names a base run config, the datasets
(each a set of ``--set`` overrides, usually ``data.path``), the variants, the seeds and extra
overrides. A variant is a list of overrides too: the built-in ones below, or any named under
``custom_variants`` (the points of a hyper-parameter search). Each run lives in
``OUT/runs/DATASET/VARIANT/seedN`` and is an ordinary run directory. The runner is
``crosssent.experiments.runner``; the statistics and reports are ``crosssent.experiments.report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crosssent.metrics import KEYS
from crosssent.train.config import RunSettings, load_settings
from crosssent.validation_errors import first_problem

M = TypeVar("M", bound=BaseModel)

ALL_METRIC_KEYS = frozenset(k for keys in KEYS.values() for k in keys)

# Grid variants: the four model variants (model.variant) by their own names, and the two
# objective ablations. ``no_gmra`` is ``text_only`` under the label that grids recorded before
# the names were made one (their records and published tables keep it).
VARIANT_OVERRIDES: dict[str, list[str]] = {
    "crosssent": [],
    "text_only": ["model.variant=text_only"],
    "no_gmra": ["model.variant=text_only"],
    "no_mpr": ["objective.lambda_mpr=0"],
    "no_eioi": ["objective.lambda_eioi=0"],
    "mag": ["model.variant=mag"],
    "late_fusion": ["model.variant=late_fusion"],
}


class TransferSettings(BaseModel):
    """The transfer stage: each finished run of ``variants`` also scored on the test split of
    every other dataset of the grid and of each test-only dataset here (label -> dataset path),
    with ``crosssent evaluate --transfer``'s rules (streams the model never read or the data
    lacks left empty, labels mapped linearly through 0, the target's metric convention)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variants: list[str] = Field(default_factory=lambda: ["crosssent"])
    datasets: dict[str, Path] = {}


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    base: Path  # run config used as the template
    datasets: dict[str, list[str]]  # dataset label -> --set overrides (e.g. data.path=...)
    variants: list[str] = Field(default_factory=lambda: ["crosssent", "text_only"])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    overrides: list[str] = []  # applied to every run
    seed_overrides: dict[str, list[int]] = {}  # variant -> its own (shorter) seed list
    bootstrap: int = Field(default=1000, ge=0)
    # Extra named variants (name -> --set overrides), e.g. the points of a hyper-parameter search.
    custom_variants: dict[str, list[str]] = {}
    # False for a search: the report shows validation metrics only (selection must not see test).
    report_test: bool = True
    # Folder of committed run records (crosssent.experiments.records): a finished run is recorded there, and
    # a run folder missing in this checkout is restored from its record instead of retrained.
    records: Path | None = None
    # Paired comparisons beyond "crosssent minus every variant": [A, B] reports A minus B.
    extra_pairs: list[tuple[str, str]] = []
    # Variant -> records folder of another grid whose run of the same dataset, variant and seed
    # is this cell's run (e.g. a search's base point): it is copied into ``records`` (test numbers
    # left out for a search) instead of trained again; the settings must match (checked).
    borrowed_records: dict[str, Path] = {}
    # Numbers quoted from elsewhere (a floor given in an issue, a paper), never ours: dataset ->
    # label -> metric -> value on the scale of metrics.json (accuracies as fractions). Drawn as
    # dashed lines in the figures and listed under the figure, always marked as quoted.
    quoted: dict[str, dict[str, dict[str, float]]] = {}
    # The transfer stage (rows: the grid's datasets; columns: these and ``transfer.datasets``).
    transfer: TransferSettings | None = None

    def variant_overrides(self, variant: str) -> list[str]:
        return self.custom_variants.get(variant, VARIANT_OVERRIDES.get(variant, []))

    def seeds_of(self, variant: str) -> list[int]:
        """The variant's seeds: its ``seed_overrides`` entry, else the experiment's seeds."""
        return self.seed_overrides.get(variant, self.seeds)


def read_yaml_model(path: Path, model: type[M], what: str) -> M:
    """A YAML file read into a pydantic model; any problem is one ``ValueError`` naming the file."""
    try:
        return model.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ValueError(f"{path}: {what} not found") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except ValidationError as err:
        raise ValueError(f"{path}: {first_problem(err)}") from None


def load_experiment(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    config = read_yaml_model(path, ExperimentConfig, "experiment config")
    known = {**VARIANT_OVERRIDES, **config.custom_variants}
    unknown = [v for v in config.variants if v not in known]
    if unknown:
        raise ValueError(f"{path}: unknown variant {unknown[0]!r}; choose from {list(known)} or define it under custom_variants")
    for pair in config.extra_pairs:
        if any(v not in config.variants for v in pair) or pair[0] == pair[1]:
            raise ValueError(f"{path}: extra_pairs: {list(pair)} must name two different variants of this experiment")
    for dataset, labelled in config.quoted.items():
        if dataset not in config.datasets:
            raise ValueError(f"{path}: quoted: {dataset!r} is not a dataset of this experiment")
        for label, values in labelled.items():
            unknown_metric = next((k for k in values if k not in ALL_METRIC_KEYS), None)
            if unknown_metric:
                raise ValueError(f"{path}: quoted: {dataset}: {label}: unknown metric {unknown_metric!r}")
    if config.transfer is not None:
        if not config.report_test:
            raise ValueError(f"{path}: transfer: scores test splits, which a search (report_test: false) must not see")
        outside = next((v for v in config.transfer.variants if v not in config.variants), None)
        if outside is not None:
            raise ValueError(f"{path}: transfer: variant {outside!r} is not a variant of this experiment")
        clash = next((d for d in config.transfer.datasets if d in config.datasets), None)
        if clash is not None:
            raise ValueError(f"{path}: transfer: {clash!r} is already a dataset of the grid (its column comes with it)")
    for variant in config.borrowed_records:
        if variant not in config.variants or config.records is None:
            raise ValueError(
                f"{path}: borrowed_records: {variant!r} needs to be a variant of this experiment and 'records' to be set"
            )
    return config


def transfer_targets(config: ExperimentConfig, dataset: str, variant: str, seed: int) -> dict[str, Path]:
    """The datasets (label -> path) that the run of this cell is scored on by the transfer
    stage: every other dataset of the grid, then the transfer's own."""
    assert config.transfer is not None
    others = {d: Path(cell_settings(config, d, variant, seed).data.path) for d in config.datasets if d != dataset}
    return {**others, **config.transfer.datasets}


def grid(config: ExperimentConfig) -> list[tuple[str, str, int]]:
    """(dataset, variant, seed), seed-major so that a partial grid covers every variant."""
    cells = []
    for seed in sorted({s for v in config.variants for s in config.seeds_of(v)}):
        for dataset in config.datasets:
            for variant in config.variants:
                if seed in config.seeds_of(variant):
                    cells.append((dataset, variant, seed))
    return cells


def cell_settings(config: ExperimentConfig, dataset: str, variant: str, seed: int) -> RunSettings:
    """The run settings of one grid cell: base config, then the experiment's, the dataset's,
    the variant's and the seed's overrides, in that order."""
    overrides = [*config.overrides, *config.datasets[dataset], *config.variant_overrides(variant), f"train.seed={seed}"]
    return load_settings(config.base, overrides)


def run_dir(out: Path, dataset: str, variant: str, seed: int) -> Path:
    return out / "runs" / dataset / variant / f"seed{seed}"
