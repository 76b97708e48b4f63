"""Run records: the part of a finished experiment run worth keeping in git.

A run folder (``runs/experiments/NAME/runs/DATASET/VARIANT/seedN``) holds weights, checkpoints
and logs and lives outside git, so a fresh checkout has none of them and a grid spread over
several sittings would start again from nothing. A record is one small JSON file per finished
run, ``RECORDS/DATASET/VARIANT/seedN.json``, holding what the reports need: the run's settings,
its metrics, its run info (wall time, hardware, gate summary), the metric convention (task) and
its test-split predictions as clip id -> score, and the transfer stage's scores on other
corpora where it has any (``transfer``, optional; ``RunDir.transfer_file``). A search grid (``report_test: false``) chooses
settings on validation, so its records keep no test number at all: no test metrics, no test
predictions (``null``), no gate summary (measured on test).

A record holds **no labels**: a restored run gets them back from the imported dataset named in
its settings, so nothing of a licensed release is committed. A restored run folder has no
``model/`` (the weights were never kept); it holds a copy of its record as ``record.json``, which
says where its numbers came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from crosssent.atomic_files import write_json_atomic
from crosssent.data.dataset import load_dataset
from crosssent.model.folder import load_preprocessing
from crosssent.train.config import RunSettings, first_difference
from crosssent.train.run_dir import RunDir

RECORD_FORMAT = 1


def record_path(records: Path, dataset: str, variant: str, seed: int) -> Path:
    return Path(records) / dataset / variant / f"seed{seed}.json"


def run_task(run: Path) -> str:
    """The metric convention of a finished run (trained here, or restored from a record)."""
    folder = RunDir(run)
    if folder.model.exists():
        return load_preprocessing(folder.model).task
    return read_record(folder.restored_record)["task"]


def write_record(run: Path, path: Path, *, with_test: bool = True) -> None:
    """Record the finished run in folder ``run`` at ``path`` (written atomically); without
    ``with_test`` (a search grid), every test number is left out."""
    folder = RunDir(run)
    metrics = folder.read_metrics()
    run_info = folder.read_run_info()
    predictions = None
    if with_test:
        predictions = {clip: prediction for clip, _, prediction in folder.read_predictions("test")}
    payload = {
        "format": RECORD_FORMAT,
        "settings": folder.read_settings(),
        "task": run_task(run),
        "metrics": metrics,
        "run_info": run_info,
        "test_predictions": predictions,
    }
    transfer = folder.read_transfer()
    if transfer and with_test:
        payload["transfer"] = transfer
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, payload if with_test else _without_test(payload))


def _without_test(record: dict[str, Any]) -> dict[str, Any]:
    """The record as a search keeps it: no test metrics, no test predictions, no gate summary
    (``fusion``, measured on test)."""
    return {
        **record,
        "metrics": {k: v for k, v in record["metrics"].items() if k != "test"},
        "run_info": {k: v for k, v in record["run_info"].items() if k != "fusion"},
        "test_predictions": None,
    }


def borrow_record(source: Path, path: Path, settings: RunSettings, *, with_test: bool = True) -> None:
    """Copy another grid's record at ``source`` to ``path``: the same run serves both grids (e.g.
    a search's base point is a grid's run), so it is not trained twice. Its settings must train
    the same run as ``settings``; without ``with_test`` (a search) every test number is left out.
    Nothing is written when the check fails."""
    record = read_record(source)
    difference = first_difference(record["settings"], settings)
    if difference:
        raise ValueError(f"{source}: {difference}; it cannot stand for this grid's run {path}")
    if with_test and record["test_predictions"] is None:
        raise ValueError(f"{source}: a search record (no test numbers) cannot fill a grid that reports the test split")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record if with_test else _without_test(record))


def read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a run record (invalid JSON: {err.msg})") from None
    missing = [k for k in ("format", "settings", "task", "metrics", "run_info", "test_predictions") if k not in record]
    if missing:
        raise ValueError(f"{path}: not a run record (no {missing[0]!r})")
    if record["format"] != RECORD_FORMAT:
        raise ValueError(f"{path}: run record format {record['format']!r}, this version reads {RECORD_FORMAT}")
    return record


def restore_run(path: Path, run: Path, settings: RunSettings, *, need_test: bool = True) -> None:
    """Rebuild the finished run folder ``run`` from the record at ``path``: its settings must
    train the same run as ``settings``, and every recorded clip must be in the test split of
    the dataset at ``settings.data.path`` (whose labels are joined back). A search record (no
    test numbers) restores only where ``need_test`` is false."""
    record = read_record(path)
    difference = first_difference(record["settings"], settings)
    if difference:
        raise ValueError(f"{path}: {difference}; delete that record or restore the experiment's settings")
    if record["test_predictions"] is None:
        if need_test:
            raise ValueError(f"{path}: a search record (no test numbers) cannot fill a grid that reports the test split")
        _write_run(run, record, rows=None)
        return
    joined = joined_test_rows(path, record, settings.data.path)
    _write_run(run, record, [(clip, "test", label, prediction) for clip, label, prediction in joined])


def joined_test_rows(path: Path, record: dict[str, Any], data_dir: str | Path) -> list[tuple[str, float, float]]:
    """(clip, label, prediction) for the test predictions of ``record`` (read from ``path``), in
    the record's order, with the labels of the dataset at ``data_dir``. The record must cover
    that dataset's test split exactly: a clip on only one side is an error naming it."""
    if record["test_predictions"] is None:
        raise ValueError(f"{path}: a search record holds no test predictions")
    table, _ = load_dataset(data_dir)
    labels = {clip: label for clip, split, label in zip(table["id"], table["split"], table["label"]) if split == "test"}
    rows = []
    for clip, prediction in record["test_predictions"].items():
        if clip not in labels:
            raise ValueError(f"{path}: clip {clip!r} is not in the test split of {data_dir}")
        rows.append((clip, labels[clip], prediction))
    unrecorded = next((clip for clip in labels if clip not in record["test_predictions"]), None)
    if unrecorded is not None:
        raise ValueError(f"{path}: clip {unrecorded!r} of the test split of {data_dir} is not in the record")
    return rows


def _write_run(run: Path, record: dict[str, Any], rows: list[tuple[str, str, float, float]] | None) -> None:
    folder = RunDir(run)
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_settings(yaml.safe_dump(record["settings"], sort_keys=False))
    write_json_atomic(folder.restored_record, record)
    if rows is not None:
        folder.write_predictions(rows)
    folder.write_run_info(record["run_info"])
    if record.get("transfer"):
        folder.write_transfer(record["transfer"])
    folder.write_metrics(record["metrics"])  # last: its presence means "finished"
