"""How much of a variant's test score is seed noise: each seed alone against their mean prediction.

    python scripts/seed_ensemble.py records/sims-e5/sims-text/crosssent data/sims-text

Reads the committed run records of one variant (``seedN.json``, see crosssent.experiments.records), joins
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

from crosssent.experiments.records import joined_test_rows, read_record
from crosssent.metrics import compute_metrics

SHOWN = ("acc2", "acc2_has0", "acc2_non0", "f1", "acc3", "acc5", "acc7", "mae", "corr")


def main(
    records: Path = typer.Argument(..., help="folder of one variant's records: RECORDS/DATASET/VARIANT"),
    data_dir: Path = typer.Argument(..., help="the imported dataset the runs were scored on"),
) -> None:
    paths = sorted(records.glob("seed*.json"))
    if not paths:
        typer.echo(f"error: {records}: no seed*.json run records", err=True)
        raise typer.Exit(2)
    preds, tasks = [], set()
    for path in paths:
        try:
            record = read_record(path)
            rows = sorted(joined_test_rows(path, record, data_dir))  # by clip id: the same order for every seed
        except ValueError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        truth = np.array([label for _, label, _ in rows])  # (N,)
        preds.append(np.array([prediction for _, _, prediction in rows]))  # (N,)
        tasks.add(record["task"])
    if len(tasks) != 1:
        typer.echo(f"error: {records}: records use different metric conventions {sorted(tasks)}", err=True)
        raise typer.Exit(2)
    task = tasks.pop()
    scored = {path.stem: compute_metrics(p, truth, task) for path, p in zip(paths, preds)}
    shown = [k for k in SHOWN if k in next(iter(scored.values()))]
    scored["mean of seeds"] = {k: float(np.mean([m[k] for m in scored.values()])) for k in shown}
    scored[f"ensemble of {len(paths)}"] = compute_metrics(np.mean(preds, axis=0), truth, task)
    typer.echo(f"{records} ({len(truth)} test clips, {task} metrics)")
    typer.echo(f"{'':16}" + "".join(f"{k:>10}" for k in shown))
    for name, metrics in scored.items():
        typer.echo(f"{name:16}" + "".join(f"{metrics[k]:10.4f}" for k in shown))


if __name__ == "__main__":
    typer.run(main)
