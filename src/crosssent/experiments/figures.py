"""Seed-spread figures of an experiment grid: ``OUT/figures/NAME-DATASET.png``.

One PNG per dataset, one panel per headline metric and one for the validation MSE that selects
the models: every seed of every variant is a dot, the variant's mean a bar and, from three
seeds on, its 95% t interval a whisker (with two seeds the t interval is 12.7 standard errors
wide and would flatten the panel), so a difference between two variants can be read against
how far the seeds of one variant lie apart. A search grid (``report_test: false``) plots
validation numbers, a result grid test numbers, as its tables. The quoted numbers' dashed
lines share one legend below the panels.
Drawn with matplotlib's object API (no pyplot state); written atomically, without a
time stamp in the file, so an unchanged grid redraws the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from crosssent.atomic_files import write_bytes_atomic
from crosssent.metrics import LOWER_IS_BETTER, RAW_VALUE_KEYS

SELECTION_KEY = "valid_mse"  # the best validation MSE of each run, whatever the split shown
MIN_SEEDS_FOR_INTERVAL = 3
QUOTED_COLORS = ("tab:red", "tab:green", "tab:purple", "tab:orange")
TICK_CHAR_INCHES = 0.065  # about the width of one character of an 8-point tick label


def _slanted_ticks(variants: list[str], panel_width: float) -> bool:
    """Whether the variant names must be slanted: more than three, or one wider than its slot."""
    slot = panel_width / len(variants)  # inches of axis per variant
    return len(variants) > 3 or max(map(len, variants)) * TICK_CHAR_INCHES > slot


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG atomically, without the software stamp (the same figure, the same bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    write_bytes_atomic(path, buffer.getvalue())
    return path


def figure_name(experiment: str, dataset: str) -> str:
    """Path of a dataset's figure relative to the experiment folder (and to a published document)."""
    return f"figures/{experiment}-{dataset}.png"


def _seed_values(r: dict[str, Any], key: str, split: str) -> tuple[list[float], dict[str, float]]:
    """One variant's values per seed and their mean_ci, as ``collect`` stores them."""
    if key == SELECTION_KEY:
        return r["valid_mse_per_seed"], r["valid_mse"]
    return r[f"{split}_per_seed"][key], r[split][key]


def draw_seed_figure(
    per_variant: dict[str, Any],
    keys: tuple[str, ...],
    *,
    split: str,
    title: str,
    quoted: dict[str, dict[str, float]] | None = None,
) -> Figure:
    """The figure of one dataset: ``per_variant[variant]`` holds ``seeds``, ``{split}_per_seed``
    (metric -> value per seed) and ``{split}`` (metric -> mean_ci), as ``collect`` makes them;
    the key ``valid_mse`` reads ``valid_mse_per_seed`` and ``valid_mse``. ``quoted`` (label ->
    metric -> value) adds a dashed line per label on the panels of the metrics it gives."""
    quoted = quoted or {}
    variants = list(per_variant)
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    width = max(3.2, 0.55 * len(variants) + 1.4)  # per panel
    fig = Figure(figsize=(width * columns, 3.4 * rows), layout="constrained")
    fig.suptitle(title, fontsize=10, wrap=True)  # a narrow figure (few variants) must not cut it
    slanted = _slanted_ticks(variants, width)
    spread = np.linspace(-0.18, 0.18, max(len(r["seeds"]) for r in per_variant.values()))
    for index, key in enumerate(keys):
        ax = fig.add_subplot(rows, columns, index + 1)
        scale = 1.0 if key in RAW_VALUE_KEYS | {SELECTION_KEY} else 100.0
        for x, variant in enumerate(variants):
            per_seed, stat = _seed_values(per_variant[variant], key, split)
            values = np.asarray(per_seed, dtype=np.float64) * scale  # (seeds,)
            offsets = spread[: len(values)] if len(values) > 1 else np.zeros(1)
            ax.scatter(x + offsets, values, s=14, color="tab:blue", alpha=0.7, zorder=3)
            ax.hlines(stat["mean"] * scale, x - 0.3, x + 0.3, color="black", linewidth=1.6, zorder=4)
            if stat["n"] >= MIN_SEEDS_FOR_INTERVAL:
                ax.vlines(x, stat["ci_low"] * scale, stat["ci_high"] * scale, color="black", linewidth=0.8, zorder=2)
        for (label, quoted_values), color in zip(quoted.items(), QUOTED_COLORS):
            if key in quoted_values:
                ax.axhline(quoted_values[key] * scale, color=color, linestyle="--", linewidth=1.0, label=f"{label} (quoted)")
        unit = " (%)" if scale == 100 else ""
        better = "lower is better" if key in LOWER_IS_BETTER | {SELECTION_KEY} else "higher is better"
        name = "validation MSE (selects the model)" if key == SELECTION_KEY else key
        ax.set_title(f"{name}{unit}, {better}", fontsize=9)
        ax.set_xticks(
            range(len(variants)), variants, rotation=40 if slanted else 0, ha="right" if slanted else "center", fontsize=8
        )
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_xlim(-0.6, len(variants) - 0.4)
    lines = {label: handle for ax in fig.axes for handle, label in zip(*ax.get_legend_handles_labels())}
    if lines:  # one legend for all panels, below them, where it cannot hide a dot
        fig.legend(list(lines.values()), list(lines), loc="outside lower center", ncols=min(len(lines), 4), fontsize=8)
    return fig


def write_figures(
    experiment: str,
    out: Path,
    results: dict[str, Any],
    *,
    split: str,
    keys: dict[str, tuple[str, ...]],
    quoted: dict[str, dict[str, dict[str, float]]],
) -> list[str]:
    """Write the figure of every dataset in ``keys`` (its headline metrics; the validation MSE
    panel is added here), with the dataset's ``quoted`` lines; returns their paths relative to
    ``out``."""
    written = []
    for dataset, dataset_keys in keys.items():
        per_variant = results[dataset]
        seeds = sorted({s for r in per_variant.values() for s in r["seeds"]})
        shown_split = "validation" if split == "valid" else split
        seed_list = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        title = (
            f"{experiment}: {dataset}, {shown_split} split, {seed_list}: "
            f"one dot per seed, bar = mean, whisker = 95% t interval (variants with {MIN_SEEDS_FOR_INTERVAL}+ seeds)"
        )
        fig = draw_seed_figure(per_variant, (*dataset_keys, SELECTION_KEY), split=split, title=title, quoted=quoted.get(dataset))
        name = figure_name(experiment, dataset)
        save_png(fig, out / name)
        written.append(name)
    return written
