"""The reference a voice model has to beat: a ridge regression on a dataset's clip-level audio.

    python scripts/probe_voice.py data/ravdess-whisper data/ravdess-egemaps --publish docs/results

Fits a ridge regression (penalty chosen by leave-one-out) on the clip vectors of the training
and validation splits together (on RAVDESS: actors 1-16), z-scored with their statistics, and
prints the test split's metrics (MOSI conventions), one row per dataset. A dataset must be
clip-aligned (one vector per clip, e.g. ``crosssent data import ravdess ... --alignment clip``).
Nothing else is trained. ``--publish docs/results`` makes the table the page ``probe-voice.md``
there, so the readings link its numbers instead of typing them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from sklearn.linear_model import RidgeCV

from crosssent.data.dataset import load_dataset
from crosssent.experiments.report import publish, script_page_head
from crosssent.metrics import compute_metrics

PAGE = "probe-voice"


def _probe(data: Path) -> tuple[str, str]:
    """One dataset's ridge probe: the line printed and the page's table row."""
    table, meta = load_dataset(data)
    if meta.alignment != "clip" or not meta.audio_dim:
        raise ValueError(f"{data}: needs clip-level audio (alignment {meta.alignment}, audio_dim {meta.audio_dim})")
    has = np.array(table["audio_length"]) > 0
    x = np.zeros((len(table), meta.audio_dim))
    x[has] = np.array([a[0] for a, h in zip(table["audio"], has) if h])
    y = np.array(table["label"], dtype=np.float64)
    split = np.array(table["split"])
    fit, test = np.isin(split, ["train", "valid"]) & has, (split == "test")
    mean, std = x[fit].mean(0), x[fit].std(0) + 1e-6
    ridge = RidgeCV(alphas=np.logspace(-2, 5, 15)).fit((x[fit] - mean) / std, y[fit])
    metrics = compute_metrics(ridge.predict((x[test] - mean) / std), y[test], meta.task)
    line = (
        f"{data}: ridge (alpha {ridge.alpha_:g}) on {fit.sum()} train+valid clips, {test.sum()} test clips"
        f" ({(~has[test]).sum()} without audio: mean vector)\n"
        f"test Corr {metrics['corr']:.3f}, Non0-ACC2 {100 * metrics['acc2_non0']:.1f}, "
        f"MAE {metrics['mae']:.3f}, ACC7 {100 * metrics['acc7']:.1f}"
    )
    row = (
        f"| {data.name} | {meta.audio_dim} | {ridge.alpha_:g} | {fit.sum()} / {test.sum()} | {metrics['corr']:.3f} | "
        f"{100 * metrics['acc2_non0']:.1f} | {metrics['mae']:.3f} | {100 * metrics['acc7']:.1f} |"
    )
    return line, row


def main(
    data: list[Path] = typer.Argument(..., help="clip-aligned datasets, one probe each"),
    publish_to: Path | None = typer.Option(None, "--publish", help="folder of published pages (docs/results)"),
) -> None:
    try:
        probes = [_probe(path) for path in data]
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    for line, _ in probes:
        typer.echo(line)
    if publish_to is not None:
        page = [
            *script_page_head("Probe", PAGE, "probe_voice.py"),
            "Ridge regression on each dataset's clip vectors (penalty by leave-one-out), fitted on the train and "
            "validation splits together, z-scored with their statistics, and scored once on the test split.",
            "",
            "## Test split",
            "",
            "| data | features | ridge alpha | clips fitted / tested | Corr | Non0-ACC2 | MAE | ACC7 |",
            "|---|---|---|---|---|---|---|---|",
            *(row for _, row in probes),
        ]
        publish("\n".join(page) + "\n", PAGE, publish_to)
        typer.echo(f"published: {publish_to / PAGE}.md", err=True)


if __name__ == "__main__":
    typer.run(main)
