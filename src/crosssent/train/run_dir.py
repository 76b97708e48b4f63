"""The run folder a training run writes (``crosssent train --out RUN_DIR``): every name in it is
spelled here and nowhere else.

- ``config.yaml``: the resolved settings (after ``--set`` overrides);
- ``checkpoints/``: ``best-epochN.ckpt`` (lowest validation MSE, epoch N counted from 0) and
  ``last.ckpt`` (the latest epoch, for ``--resume``); removed when the run finishes unless
  ``train.keep_checkpoints``;
- ``logs/``: CSV (``metrics.csv``) and TensorBoard event files;
- at the very end, each written atomically: ``model/`` (the exported model folder,
  ``crosssent.model.folder``), ``predictions.csv`` (``id, split, label, prediction``),
  ``run_info.json`` (wall time, hardware, software, gate summary) and, last of all,
  ``metrics.json`` (``{"valid": {...}, "test": {...}}``). A run without ``metrics.json`` is not
  finished;
- ``evaluations/NAME/``: ``metrics.json`` and ``predictions.csv`` of ``crosssent evaluate``;
- ``transfer.json``: the experiment runner's transfer stage, ``{LABEL: {"data": PATH,
  "metrics": {...}}}``, the run's model scored on other corpora's test splits;
- ``.lock``: held by the experiment runner while it trains the run;
- ``record.json``: in a run restored from its committed record instead of trained, that record.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from crosssent.atomic_files import write_csv_atomic, write_json_atomic, write_text_atomic
from crosssent.scoring import PredictionRow, format_table


@dataclass(frozen=True)
class RunDir:
    """Paths, readers and writers of one run folder."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # -- paths ----------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def logs_name(self) -> str:
        return "logs"  # a folder the loggers create under ``path``

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def predictions_file(self) -> Path:
        return self.path / "predictions.csv"

    @property
    def run_info_file(self) -> Path:
        return self.path / "run_info.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    @property
    def restored_record(self) -> Path:
        """In a run restored from its record (``crosssent.experiments.records``): that record."""
        return self.path / "record.json"

    @property
    def transfer_file(self) -> Path:
        return self.path / "transfer.json"

    def evaluation(self, name: str) -> Path:
        """Where ``crosssent evaluate`` of this run's model on dataset ``name`` writes."""
        return self.path / "evaluations" / name

    # -- state ----------------------------------------------------------------------------------
    def is_finished(self) -> bool:
        return self.metrics_file.exists()

    def has_checkpoint(self) -> bool:
        return self.last_checkpoint.exists()

    # -- readers --------------------------------------------------------------------------------
    def read_settings(self) -> dict[str, Any] | None:
        """The saved settings as a plain tree; None when missing or unreadable."""
        try:
            tree = yaml.safe_load(self.config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        return tree if isinstance(tree, dict) else None

    def read_metrics(self) -> dict[str, dict[str, float]]:
        return json.loads(self.metrics_file.read_text(encoding="utf-8"))

    def read_run_info(self) -> dict[str, Any]:
        return json.loads(self.run_info_file.read_text(encoding="utf-8"))

    def read_predictions(self, split: str) -> list[tuple[str, float, float]]:
        return read_predictions(self.predictions_file, split)

    def read_transfer(self) -> dict[str, Any]:
        """The transfer stage's scores (empty when it has none)."""
        if not self.transfer_file.exists():
            return {}
        return json.loads(self.transfer_file.read_text(encoding="utf-8"))

    # -- writers (each atomic) ------------------------------------------------------------------
    def write_settings(self, text: str) -> None:
        write_text_atomic(self.config_file, text)

    def write_predictions(self, rows: list[PredictionRow]) -> None:
        write_predictions(self.predictions_file, rows)

    def write_run_info(self, info: dict[str, Any]) -> None:
        write_json_atomic(self.run_info_file, info)

    def write_transfer(self, scores: dict[str, Any]) -> None:
        write_json_atomic(self.transfer_file, scores)

    def write_metrics(self, metrics: dict[str, dict[str, float]]) -> None:
        """Last of a run's files: its presence means the run has finished."""
        write_json_atomic(self.metrics_file, metrics)


def write_predictions(path: Path, rows: list[PredictionRow]) -> None:
    write_csv_atomic(path, ["id", "split", "label", "prediction"], ((i, s, f"{y:.6g}", f"{p:.6g}") for i, s, y, p in rows))


def read_predictions(path: Path, split: str) -> list[tuple[str, float, float]]:
    """(id, label, prediction) of one split of a file that ``write_predictions`` wrote."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [(r["id"], float(r["label"]), float(r["prediction"])) for r in csv.DictReader(handle) if r["split"] == split]


def write_evaluation(folder: Path, metrics: dict[str, dict[str, float]], rows: list[PredictionRow]) -> None:
    """An evaluation folder: the same two files as a run's, for one model on one dataset."""
    write_predictions(folder / "predictions.csv", rows)
    write_json_atomic(folder / "metrics.json", metrics)


def compare_runs(run_dirs: list[Path], split: str = "test") -> str:
    """Side-by-side metrics of finished runs: one row per metric, one column per run."""
    results = {}
    for path in run_dirs:
        run = RunDir(path)
        if not run.is_finished():
            raise ValueError(f"{path}: no {run.metrics_file.name} (the run has not finished)")
        metrics = run.read_metrics()
        if split not in metrics:
            raise ValueError(f"{run.metrics_file}: has no {split!r} metrics")
        results[run.path.name] = metrics[split]
    return format_table(results)
