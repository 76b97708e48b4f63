"""The experiment runner: every cell of a grid, resumable, shared by several processes.

Cells are run seed by seed, so a partial grid covers every variant. A finished run
(``metrics.json``) is skipped, an interrupted one is resumed from its last checkpoint, and one
made with other settings is refused. A run folder is claimed with a lock file, so several
processes can share a grid. With ``records`` set, each finished run is also written as a
committed run record (``crosssent.experiments.records``) and a run folder missing here is restored from its
record instead of retrained. Model selection inside each run is on validation only; the test
split is scored once per run. The reports are written by ``crosssent.experiments.report``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crosssent.experiments.config import ExperimentConfig, cell_settings, grid, run_dir, transfer_targets
from crosssent.experiments.records import borrow_record, record_path, restore_run, write_record
from crosssent.experiments.report import write_reports
from crosssent.train.config import first_difference
from crosssent.train.run_dir import RunDir


class GridIncomplete(RuntimeError):
    """Raised when ``max_runs`` new runs were made and cells remain (continue later)."""


def run_grid(
    config: ExperimentConfig,
    out: str | Path,
    *,
    max_runs: int | None = None,
    echo: Callable[[str], None] = print,
    run_fn: Callable[..., Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run every missing cell (resuming interrupted ones), then write the reports."""
    from crosssent.train.trainer import train_run

    run_fn = run_fn or train_run
    out = Path(out)
    cells = grid(config)
    started, made = time.time(), 0
    for i, (dataset, variant, seed) in enumerate(cells, start=1):
        target = run_dir(out, dataset, variant, seed)
        label = f"[{i}/{len(cells)}] {dataset} {variant} seed {seed}"
        settings = cell_settings(config, dataset, variant, seed)
        _check_same_settings(target, settings)
        if _sync_record(config, target, (dataset, variant, seed), settings):
            echo(f"{label}: restored from {record_path(config.records or Path(), dataset, variant, seed)}")
            continue
        if RunDir(target).is_finished():
            echo(f"{label}: done, skipped")
            continue
        if max_runs is not None and made >= max_runs:
            if config.transfer is not None:  # a partial grid's finished runs are scored elsewhere too
                transfer_stage(config, out, echo=echo)
            write_reports(config, out, wall_seconds=time.time() - started, command=command)
            raise GridIncomplete(f"stopped after {made} new run(s); {len(cells) - i + 1} cell(s) left")
        lock = _claim(target)
        if lock is None:
            echo(f"{label}: being trained by another process, skipped")
            continue
        try:
            if RunDir(target).is_finished():  # finished by another process meanwhile
                echo(f"{label}: done, skipped")
                continue
            resume = RunDir(target).has_checkpoint()
            echo(f"{label}: {'resuming' if resume else 'training'} ...")
            t0 = time.time()
            run_fn(settings, target, resume=resume)
        finally:
            lock.unlink(missing_ok=True)
        made += 1
        _sync_record(config, target, (dataset, variant, seed), settings)
        echo(f"{label}: finished in {time.time() - t0:.0f}s")
    if config.transfer is not None:
        transfer_stage(config, out, echo=echo)
    return write_reports(config, out, wall_seconds=time.time() - started, command=command)


def transfer_stage(config: ExperimentConfig, out: Path, *, echo: Callable[[str], None] = print) -> None:
    """Score every finished run of the transfer's variants on its targets' test splits
    (``transfer_targets``), once: the scores go to the run's ``transfer.json`` and its record.
    A run whose scores are recorded needs no model; one without needs its model folder."""
    from crosssent.model.onnx_runtime import load_runtime
    from crosssent.scoring import evaluate_loaded

    for dataset, variant, seed in grid(config):
        if config.transfer is None or variant not in config.transfer.variants:
            continue
        folder = RunDir(run_dir(out, dataset, variant, seed))
        if not folder.is_finished():
            continue
        scores = folder.read_transfer()
        todo = {
            label: path
            for label, path in transfer_targets(config, dataset, variant, seed).items()
            if scores.get(label, {}).get("data") != str(path)
        }
        if not todo:
            continue
        if not folder.model.exists():
            raise ValueError(
                f"{folder.path}: no model to score on {next(iter(todo))} (a run restored from its record keeps no "
                "weights); delete that run folder and its record to train it again"
            )
        model, tokenizer, prep = load_runtime(folder.model, "torch")  # once for every target
        for label, path in todo.items():
            echo(f"transfer: {dataset} {variant} seed {seed} -> {label} ...")
            metrics, _ = evaluate_loaded(model, tokenizer, prep, path, ("test",), transfer=True)
            scores[label] = {"data": str(path), "metrics": metrics["test"]}
            folder.write_transfer(scores)
        if config.records is not None:
            write_record(folder.path, record_path(config.records, dataset, variant, seed), with_test=True)


def sync_records(config: ExperimentConfig, out: str | Path) -> int:
    """Record every finished run that has no record yet, and restore every run folder that is
    missing but recorded (no training). Returns how many runs were restored."""
    restored = 0
    for dataset, variant, seed in grid(config):
        target = run_dir(Path(out), dataset, variant, seed)
        settings = cell_settings(config, dataset, variant, seed)
        _check_same_settings(target, settings)
        restored += _sync_record(config, target, (dataset, variant, seed), settings)
    return restored


def _sync_record(config: ExperimentConfig, target: Path, cell: tuple[str, str, int], settings: Any) -> bool:
    """Write the record of a finished run that lacks one; restore an unfinished run that has
    one, first copying it from another grid where ``borrowed_records`` says so. True when the
    run was restored."""
    if config.records is None:
        return False
    record = record_path(config.records, *cell)
    if RunDir(target).is_finished():
        if not record.exists():
            write_record(target, record, with_test=config.report_test)
        return False
    source = config.borrowed_records.get(cell[1])
    if not record.exists() and source is not None and record_path(source, *cell).exists():
        borrow_record(record_path(source, *cell), record, settings, with_test=config.report_test)
    if record.exists():
        restore_run(record, target, settings, need_test=config.report_test)
        return True
    return False


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started, as the kernel counts it (Linux: clock ticks since boot, field
    22 of /proc/PID/stat); None where that cannot be read (not Linux, or no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # fields after the command name, which may hold spaces


def _lock_owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _process_start(os.getpid())}


def _lock_is_live(text: str) -> bool:
    """Whether the process that wrote a lock still runs: same host, a live PID, and (where it
    can be read) the same process start time, so a PID the system gave to another process
    since does not keep the lock. A lock from another host cannot be checked and is kept."""
    try:
        owner = json.loads(text)
    except ValueError:
        owner = None
    if not isinstance(owner, dict):  # the bare PID of older versions
        owner = {"host": socket.gethostname(), "pid": int(text) if text.strip().isdigit() else 0, "started": None}
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    started = owner.get("started")
    return started is None or started == _process_start(pid)


def _claim(target: Path) -> Path | None:
    """Take ``target/.lock`` (its owner's host, PID and process start time) so that several
    ``crosssent experiment`` processes can work on one grid; None when a live process holds it.
    A stale lock (its process died, or its PID now names another process) is taken over: the
    run resumes from its last checkpoint."""
    target.mkdir(parents=True, exist_ok=True)
    lock = RunDir(target).lock_file
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                text = lock.read_text()
            except OSError:
                return None
            if _lock_is_live(text):
                return None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(_lock_owner()))
        return lock
    return None


def _check_same_settings(target: Path, settings: Any) -> None:
    """A run folder made with other settings (the config changed since) is never reused."""
    saved = RunDir(target).read_settings()
    if saved is None:
        return
    difference = first_difference(saved, settings)
    if difference:
        raise ValueError(f"{target}: {difference}; delete that run folder or use another --out")
