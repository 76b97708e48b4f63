"""How far recognised transcripts are from the official ones, and how far that moves a model's scores.

    python scripts/compare_transcripts.py OFFICIAL.csv RECOGNISED.csv [--model RUN_DIR/model]

OFFICIAL.csv has the columns ``id`` and ``text`` (and ``label``, optional); RECOGNISED.csv is what
``crosssent transcribe`` writes. Clips are joined by id; every official clip must have been
recognised. Printed: the error rate over all clips (``crosssent.features.transcribe.error_rate``: per
word for English, per character for Chinese) and the share of clips recognised without an error.
With ``--model``, each clip is scored from both transcripts: the mean and largest change of the
score, and, where the official file has labels, the metrics of either set of scores.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import typer

from crosssent.features.transcribe import error_rate, transcript_units
from crosssent.inference.predict import check_clips, predict_folder, read_transcripts
from crosssent.metrics import compute_metrics

SHOWN = ("acc2", "acc2_non0", "acc5", "acc7", "mae", "corr")


def _labels(path: Path) -> dict[str, float]:
    """Clip id -> label, from the optional ``label`` column ({} without one)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "label" not in rows[0]:
        return {}
    labels = {}
    for row in rows:
        try:
            labels[row["id"]] = float(row["label"])
        except (TypeError, ValueError):
            raise SystemExit(f"error: {path}: clip {row['id']!r} has label {row['label']!r}, not a number") from None
    return labels


def main(
    official: Path = typer.Argument(..., help="CSV: id,text[,label], the reference transcripts"),
    recognised: Path = typer.Argument(..., help="CSV written by crosssent transcribe"),
    model: Path | None = typer.Option(None, help="exported model folder: score both transcripts"),
) -> None:
    try:
        reference_rows, heard_rows = read_transcripts(official), read_transcripts(recognised)
        for path, rows in ((official, reference_rows), (recognised, heard_rows)):
            try:
                check_clips(rows)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    reference, heard = dict(reference_rows), dict(heard_rows)
    labels = _labels(official)  # read now: a bad label is an error before any model is loaded
    missing = [clip for clip in reference if clip not in heard]
    if missing:
        raise SystemExit(f"error: {recognised}: clip {missing[0]!r} of {official} was not recognised ({len(missing)} missing)")
    clips = list(reference)
    units = np.array([len(transcript_units(reference[c])) for c in clips])
    if not units.all():
        raise SystemExit(f"error: {official}: clip {clips[int(np.argmin(units))]!r} has no words or characters to compare")
    rates = np.array([error_rate(reference[c], heard[c]) for c in clips])
    print(
        f"{len(clips)} clips: error rate {np.sum(rates * units) / units.sum():.3f} over {units.sum()} units "
        f"(mean per clip {rates.mean():.3f}); {np.mean(rates == 0):.1%} of clips without an error"
    )
    if model is None:
        return
    prep, from_reference = predict_folder(model, [(c, reference[c]) for c in clips])
    _, from_heard = predict_folder(model, [(c, heard[c]) for c in clips])
    change = np.abs(from_heard - from_reference)
    print(
        f"score change: mean {change.mean():.3f}, largest {change.max():.3f} (labels span "
        f"{prep.label_min:g} to {prep.label_max:g}); correlation of the two "
        f"{np.corrcoef(from_reference, from_heard)[0, 1]:.3f}"
    )
    if labels:
        truth = np.array([labels[c] for c in clips])
        for name, scores in (("official transcripts", from_reference), ("recognised transcripts", from_heard)):
            metrics = compute_metrics(scores, truth, prep.task)
            print(f"{name}: " + ", ".join(f"{k} {metrics[k]:.3f}" for k in SHOWN if k in metrics))


if __name__ == "__main__":
    typer.run(main)
