"""The reference a voice model has to beat: a ridge regression on a dataset's clip-level audio.

    python scripts/probe_voice.py data/ravdess-whisper

Fits a ridge regression (penalty chosen by leave-one-out) on the clip vectors of the training
and validation splits together (on RAVDESS: actors 1-16), z-scored with their statistics, and
prints the test split's metrics (MOSI conventions). The dataset must be clip-aligned (one vector
per clip, e.g. ``crosssent data import ravdess ... --alignment clip``). Nothing else is trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from sklearn.linear_model import RidgeCV

from crosssent.data.dataset import load_dataset
from crosssent.metrics import compute_metrics


def main(data: Path) -> None:
    table, meta = load_dataset(data)
    if meta.alignment != "clip" or not meta.audio_dim:
        typer.echo(f"error: {data}: needs clip-level audio (alignment {meta.alignment}, audio_dim {meta.audio_dim})", err=True)
        raise typer.Exit(2)
    has = np.array(table["audio_length"]) > 0
    x = np.zeros((len(table), meta.audio_dim))
    x[has] = np.array([a[0] for a, h in zip(table["audio"], has) if h])
    y = np.array(table["label"], dtype=np.float64)
    split = np.array(table["split"])
    fit, test = np.isin(split, ["train", "valid"]) & has, (split == "test")
    mean, std = x[fit].mean(0), x[fit].std(0) + 1e-6
    ridge = RidgeCV(alphas=np.logspace(-2, 5, 15)).fit((x[fit] - mean) / std, y[fit])
    preds = ridge.predict((x[test] - mean) / std)
    metrics = compute_metrics(preds, y[test], meta.task)
    typer.echo(
        f"{data}: ridge (alpha {ridge.alpha_:g}) on {fit.sum()} train+valid clips, {test.sum()} test clips"
        f" ({(~has[test]).sum()} without audio: mean vector)"
    )
    typer.echo(
        f"test Corr {metrics['corr']:.3f}, Non0-ACC2 {100 * metrics['acc2_non0']:.1f}, "
        f"MAE {metrics['mae']:.3f}, ACC7 {100 * metrics['acc7']:.1f}"
    )


if __name__ == "__main__":
    typer.run(main)
