"""Figures of finished runs, readable without the code: ``crosssent plot KIND RUN_DIR --out FILE.png``.

- ``scatter``: predicted against true scores of one split, with the ordinal levels of the
  metric convention as a grid, and the level-confusion matrix beside it (how often a clip lands
  two or more levels away from its own, what EIOI targets);
- ``curves``: the training loss by step and the validation MSE by epoch, from the run's
  ``logs/metrics.csv``, with the epoch that selected the model marked;
- ``tsne``: the fused clip embeddings (``CrossSentOutput.embedding``) of one split, reduced to two
  dimensions by scikit-learn's t-SNE (seeded), coloured by the true score, one panel per run;
- ``attention``: for chosen clips, GMRA's cross-attention (text tokens x audio/visual positions,
  averaged over heads, the tokens as tick labels), the mean gate value per token, and the
  encoder's self-attention at a chosen layer.

The last two run the run's exported model (``RUN_DIR/model``) on its own dataset (the run
config's ``data.path``) or on ``--data``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from crosssent.experiments.figures import save_png
from crosssent.metrics import compute_metrics
from crosssent.train.run_dir import RunDir

KINDS = ("scatter", "curves", "tsne", "attention")


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
    left.set(
        xlabel="true score",
        ylabel="predicted score",
        xlim=(lo - 0.2, hi + 0.2),
        ylim=(lo - 0.2, hi + 0.2),
        title=f"{split}: Corr {metrics['corr']:.3f}, MAE {metrics['mae']:.3f}, {len(rows)} clips",
    )
    image = right.imshow(confusion, cmap="Blues")
    for i in range(7):
        for j in range(7):
            if confusion[i, j]:
                right.text(
                    j,
                    i,
                    str(confusion[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if confusion[i, j] > confusion.max() / 2 else "black",
                )
    ticks = [f"{v:g}" for v in np.arange(-3, 4) / steps]
    right.set(
        xticks=range(7),
        yticks=range(7),
        xticklabels=ticks,
        yticklabels=ticks,
        xlabel="predicted level",
        ylabel="true level",
        title=f"levels: {100 * metrics['jump2']:.1f} % of clips 2+ levels away",
    )
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
    right.scatter(
        [xs[best]],
        [ys[best]],
        s=120,
        facecolors="none",
        edgecolors="red",
        label=f"selected: epoch {xs[best]:g}, MSE {ys[best]:.3f}",
    )
    right.set(xlabel="epoch", ylabel="validation MSE", title="validation (selects the model)")
    right.legend()
    fig.suptitle(f"{run_path}")
    return save_png(fig, out)


def _model_and_split(run_path: Path, data: Path | None, split: str) -> tuple[Any, Any, Any, Any]:
    """(model, tokenizer, aligned rows of ``split``, dataset metadata) of a run's exported model."""
    from crosssent.scoring import load_for_scoring

    run = RunDir(run_path)
    if not run.model.is_dir():
        raise ValueError(f"{run_path}: no exported model ({run.model.name}/ is missing; a restored record has none)")
    if data is None:
        settings = run.read_settings() or {}
        data = Path(settings.get("data", {}).get("path", ""))
        if not str(data) or not data.is_dir():
            raise ValueError(f"{run_path}: its dataset {str(data)!r} is not here; give --data")
    model, tokenizer, aligned, meta = load_for_scoring(run.model, data)
    rows = aligned.filter(lambda r: r["split"] == split)
    if len(rows) == 0:
        raise ValueError(f"{data}: no clips in split {split!r}")
    return model, tokenizer, rows, meta


def plot_tsne(runs: list[Path], out: Path, *, data: Path | None = None, split: str = "test", seed: int = 0) -> Path:
    """The fused clip embeddings of ``split``, one t-SNE panel per run, coloured by the true score."""
    from sklearn.manifold import TSNE

    from crosssent.scoring import outputs

    fig = Figure(figsize=(5.2 * len(runs) + 0.8, 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(runs)))
    image = None
    for ax, run_path in zip(axes, runs):
        model, _, rows, meta = _model_and_split(run_path, data, split)
        found = list(outputs(model, rows))
        embeddings = np.concatenate([out.embedding.float().numpy() for _, out in found])
        labels = np.concatenate([batch.label.float().numpy() for batch, _ in found])
        if len(embeddings) < 5:
            raise ValueError(f"{run_path}: t-SNE needs at least 5 clips in {split!r}, got {len(embeddings)}")
        points = TSNE(
            n_components=2, perplexity=min(30.0, (len(embeddings) - 1) / 3), init="pca", random_state=seed
        ).fit_transform(embeddings)
        image = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="coolwarm", s=12, vmin=meta.label_min, vmax=meta.label_max)
        ax.set(
            title=f"{run_path.parent.name}/{run_path.name}\n({model.config.variant}, {len(labels)} {split} clips)",
            xticks=[],
            yticks=[],
        )
    assert image is not None
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="true score")
    fig.suptitle(f"t-SNE of the fused clip embeddings (seed {seed})")
    return save_png(fig, out)


def plot_attention(
    run_path: Path,
    out: Path,
    *,
    clips: list[str] | None = None,
    data: Path | None = None,
    split: str = "test",
    layer: int = 1,
) -> Path:
    """For each chosen clip (default: the first two of ``split``): GMRA's cross-attention map with
    the tokens as labels, the mean gate per token, and the encoder self-attention at ``layer``."""
    from crosssent.scoring import outputs

    model, tokenizer, rows, meta = _model_and_split(run_path, data, split)
    if model.config.variant != "crosssent" or not (model.config.audio_dim or model.config.visual_dim):
        raise ValueError(f"{run_path}: a {model.config.variant} model has no GMRA attention to draw")
    layers = model.backbone.config.num_hidden_layers
    if not 1 <= layer <= layers:
        raise ValueError(f"--layer {layer}: the encoder has layers 1-{layers}")
    ids = list(rows["id"])
    wanted = clips or ids[:2]
    missing = [c for c in wanted if c not in ids]
    if missing:
        raise ValueError(f"clip {missing[0]!r} is not in the {split!r} split")
    chosen = rows.select([ids.index(c) for c in wanted])
    ((batch, output),) = list(outputs(model, chosen, attentions=True, batch_size=len(wanted)))
    audio_keys = batch.audio.shape[1] if batch.audio is not None and model.config.audio_dim else 0
    fig = Figure(figsize=(15, 4.2 * len(wanted)), layout="constrained")
    grid = fig.subplots(len(wanted), 3, squeeze=False, gridspec_kw={"width_ratios": [3, 1, 3]})
    for i, clip in enumerate(wanted):
        n = int(batch.attention_mask[i].sum())
        tokens = tokenizer.convert_ids_to_tokens(batch.input_ids[i, :n].tolist())
        word = meta.alignment == "word"
        keys = (
            _frame_names("audio", batch.audio_mask[i].tolist(), tokens, word)
            if audio_keys and batch.audio_mask is not None
            else []
        )
        if batch.visual_mask is not None and model.config.visual_dim:
            keys += _frame_names("visual", batch.visual_mask[i].tolist(), tokens, word)
        real = [k for k, (_, m) in enumerate(keys) if m]
        cross = output.cross_attentions[i].float().mean(0)[:n][:, real].numpy()  # (tokens, real keys)
        left, middle, right = grid[i]
        left.imshow(cross, aspect="auto", cmap="viridis")
        left.set(
            yticks=range(n),
            xlabel="audio (a) / visual (v) frames",
            xticks=range(len(real)),
            title=f"clip {clip}: GMRA cross-attention (mean of heads)",
        )
        left.set_yticklabels(tokens, fontsize=7)
        left.set_xticklabels([keys[k][0] for k in real], fontsize=6, rotation=90)
        gate = output.gates[i].float().mean(-1)[:n].numpy()  # (tokens,)
        middle.barh(range(n), gate)
        middle.set(ylim=(n - 0.5, -0.5), yticks=[], xlabel="mean gate", title=f"gate (clip mean {gate.mean():.3f})")
        attention = output.attentions[layer - 1][i].float().mean(0)[:n, :n].numpy()
        right.imshow(attention, cmap="magma")
        right.set(xticks=range(n), yticks=range(n), title=f"encoder self-attention, layer {layer} (mean of heads)")
        right.set_xticklabels(tokens, fontsize=7, rotation=90)
        right.set_yticklabels(tokens, fontsize=7)
    fig.suptitle(f"{run_path}")
    return save_png(fig, out)


def _frame_names(stream: str, mask: list[bool], tokens: list[str], word_aligned: bool) -> list[tuple[str, bool]]:
    """(tick label, real) per frame of a stream: a word-aligned frame is named by its token."""
    return [
        (f"{stream[0]}:{tokens[k]}" if word_aligned and k < len(tokens) else f"{stream[0]}{k}", m) for k, m in enumerate(mask)
    ]


def plot(
    kind: str,
    runs: list[Path],
    out: Path,
    *,
    split: str = "test",
    data: Path | None = None,
    clips: list[str] | None = None,
    layer: int = 1,
    seed: int = 0,
) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown plot {kind!r}; choose from {', '.join(KINDS)}")
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {out}: figures are PNG files (FILE.png)")
    if kind == "tsne":
        return plot_tsne(runs, out, data=data, split=split, seed=seed)
    if len(runs) != 1:
        raise ValueError(f"plot {kind} draws one run; got {len(runs)}")
    if kind == "attention":
        return plot_attention(runs[0], out, clips=clips, data=data, split=split, layer=layer)
    return plot_scatter(runs[0], out, split=split) if kind == "scatter" else plot_curves(runs[0], out)
