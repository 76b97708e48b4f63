"""Figures of finished runs, readable without the code: ``crosssent plot KIND RUN_DIR --out FILE.png``.

- ``scatter``: predicted against true scores of one split, with the ordinal levels of the
  metric convention as a grid, and the level-confusion matrix beside it (how often a clip lands
  two or more levels away from its own, what EIOI targets);
- ``curves``: the training loss by step and the validation MSE by epoch, from the run's
  ``logs/metrics.csv``, with the epoch that selected the model marked.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from crosssent.experiments.figures import save_png
from crosssent.metrics import compute_metrics
from crosssent.train.run_dir import RunDir

KINDS = ("scatter", "curves")


def _label_range(run: RunDir) -> tuple[float, float, str]:
    from crosssent.experiments.records import run_task

    task = run_task(run.path)
    return ((-1.0, 1.0) if task == "sims" else (-3.0, 3.0)) + (task,)


def plot_scatter(run_path: Path, out: Path, *, split: str = "test") -> Path:
    """Predicted vs true, and the level-confusion matrix, of one split of a finished run."""
    run = RunDir(run_path)
    if not run.is_finished():
        raise ValueError(f"{run_path}: not a finished run ({run.metrics_file.name} is missing)")
    rows = run.read_predictions(split)
    if not rows:
        raise ValueError(f"{run.predictions_file}: no predictions for the {split!r} split")
    lo, hi, task = _label_range(run)
    labels = np.array([r[1] for r in rows])
    preds = np.array([r[2] for r in rows])
    steps = 3 / hi  # levels: -3..3 on MOSI's scale, the same seven on CH-SIMS's [-1, 1]
    true_level = np.round(np.clip(labels, lo, hi) * steps).astype(int)
    pred_level = np.round(np.clip(preds, lo, hi) * steps).astype(int)
    confusion = np.zeros((7, 7), dtype=int)
    for t, p in zip(true_level, pred_level):
        confusion[t + 3, p + 3] += 1
    metrics = compute_metrics(preds, labels, task)
    fig = Figure(figsize=(11, 4.8), layout="constrained")  # no pyplot: no global state, safe in threads
    left, right = fig.subplots(1, 2)
    left.scatter(labels, preds, s=10, alpha=0.5)
    left.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8)
    for level in np.arange(-3, 4) / steps:
        left.axvline(level, color="lightgrey", linewidth=0.5, zorder=0)
        left.axhline(level, color="lightgrey", linewidth=0.5, zorder=0)
    left.set(xlabel="true score", ylabel="predicted score", xlim=(lo - 0.2, hi + 0.2), ylim=(lo - 0.2, hi + 0.2),
             title=f"{split}: Corr {metrics['corr']:.3f}, MAE {metrics['mae']:.3f}, {len(rows)} clips")
    image = right.imshow(confusion, cmap="Blues")
    for i in range(7):
        for j in range(7):
            if confusion[i, j]:
                right.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                           color="white" if confusion[i, j] > confusion.max() / 2 else "black")
    ticks = [f"{v:g}" for v in np.arange(-3, 4) / steps]
    right.set(xticks=range(7), yticks=range(7), xticklabels=ticks, yticklabels=ticks, xlabel="predicted level",
              ylabel="true level", title=f"levels: {100 * metrics['jump2']:.1f} % of clips 2+ levels away")
    fig.colorbar(image, ax=right, shrink=0.8)
    fig.suptitle(f"{run_path}")
    return save_png(fig, out)


def _read_log(path: Path) -> dict[str, list[tuple[float, float]]]:
    """metric -> (x in epochs, value) from Lightning's CSV log: validation values at the end of
    their epoch, training values at their step's place within the run."""
    if not path.is_file():
        raise ValueError(f"{path}: no training log (logs/metrics.csv is written while a run trains)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("epoch") and r.get("step")]
    valid_steps = [float(r["step"]) for r in rows if r.get("valid_mse")]
    per_epoch = (valid_steps[0] + 1) if valid_steps else 1.0  # the first validation comes after one epoch's steps
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key in ("epoch", "step") or not value:
                continue
            x = float(row["epoch"]) + 1 if key.startswith("valid") else (float(row["step"]) + 1) / per_epoch
            series.setdefault(key, []).append((x, float(value)))
    return series


def plot_curves(run_path: Path, out: Path) -> Path:
    """Training loss and MSE by epoch (from their logged steps) and validation MSE by epoch."""
    run = RunDir(run_path)
    series = _read_log(run.path / run.logs_name / "metrics.csv")
    if "valid_mse" not in series:
        raise ValueError(f"{run_path}: its log holds no validation MSE")
    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for key in ("train_loss", "train_mse"):
        if key in series:
            xs, ys = zip(*series[key])
            left.plot(xs, ys, linewidth=0.8, label=key)
    left.set(xlabel="epoch", title="training (logged steps)")
    if left.lines:
        left.legend()
    xs, ys = zip(*series["valid_mse"])
    right.plot(xs, ys, marker="o")
    best = int(np.argmin(ys))
    right.scatter([xs[best]], [ys[best]], s=120, facecolors="none", edgecolors="red",
                  label=f"selected: epoch {xs[best]:g}, MSE {ys[best]:.3f}")
    right.set(xlabel="epoch", ylabel="validation MSE", title="validation (selects the model)")
    right.legend()
    fig.suptitle(f"{run_path}")
    return save_png(fig, out)


def plot(kind: str, runs: list[Path], out: Path, *, split: str = "test") -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown plot {kind!r}; choose from {', '.join(KINDS)} (tsne and attention are not built yet)")
    if len(runs) != 1:
        raise ValueError(f"plot {kind} draws one run; got {len(runs)}")
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {out}: figures are PNG files (FILE.png)")
    return plot_scatter(runs[0], out, split=split) if kind == "scatter" else plot_curves(runs[0], out)
