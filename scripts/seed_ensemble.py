"""How much of a variant's test score is seed noise: each seed alone against their mean prediction.

    python scripts/seed_ensemble.py records/sims-e5/sims-text/crosssent data/sims-text

Reads the committed run records of one variant (``seedN.json``, see crosssent.records), joins
their test predictions with the labels of the imported dataset by clip id, and prints the test
metrics of every seed, their mean over seeds, and those of the ensemble that averages the seeds'
predictions clip by clip (scored with the record's own metric convention). An ensemble of N
seeds is a different model, N times dearer, so this is a diagnostic, never a reported result: if
even the ensemble stays under a quoted number, seed luck alone does not explain the gap to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from crosssent.data.dataset import load_dataset
from crosssent.metrics import compute_metrics
from crosssent.records import read_record

SHOWN = ("acc2", "acc2_has0", "acc2_non0", "f1", "acc3", "acc5", "acc7", "mae", "corr")


def main(
    records: Path = typer.Argument(..., help="folder of one variant's records: RECORDS/DATASET/VARIANT"),
    data_dir: Path = typer.Argument(..., help="the imported dataset the runs were scored on"),
) -> None:
    paths = sorted(records.glob("seed*.json"))
    if not paths:
        typer.echo(f"error: {records}: no seed*.json run records", err=True)
        raise typer.Exit(2)
    table, _ = load_dataset(data_dir)
    labels = {clip: label for clip, label, split in zip(table["id"], table["label"], table["split"]) if split == "test"}
    clips = sorted(labels)
    truth = np.array([labels[c] for c in clips])  # (N,)
    preds, tasks = [], set()
    for path in paths:
        record = read_record(path)
        scores = record["test_predictions"]
        if not scores:
            typer.echo(f"error: {path}: no test predictions (a validation-only search record)", err=True)
            raise typer.Exit(2)
        missing = [c for c in clips if c not in scores]
        if missing or len(scores) != len(clips):
            clip = missing[0] if missing else next(c for c in scores if c not in labels)
            typer.echo(f"error: {path}: clip {clip} is not in both the record and {data_dir}'s test split", err=True)
            raise typer.Exit(2)
        preds.append(np.array([scores[c] for c in clips]))  # (N,)
        tasks.add(record["task"])
    if len(tasks) != 1:
        typer.echo(f"error: {records}: records use different metric conventions {sorted(tasks)}", err=True)
        raise typer.Exit(2)
    task = tasks.pop()
    rows = {path.stem: compute_metrics(p, truth, task) for path, p in zip(paths, preds)}
    shown = [k for k in SHOWN if k in next(iter(rows.values()))]
    rows["mean of seeds"] = {k: float(np.mean([r[k] for r in rows.values()])) for k in shown}
    rows[f"ensemble of {len(paths)}"] = compute_metrics(np.mean(preds, axis=0), truth, task)
    typer.echo(f"{records} ({len(clips)} test clips, {task} metrics)")
    typer.echo(f"{'':16}" + "".join(f"{k:>10}" for k in shown))
    for name, metrics in rows.items():
        typer.echo(f"{name:16}" + "".join(f"{metrics[k]:10.4f}" for k in shown))


if __name__ == "__main__":
    typer.run(main)
