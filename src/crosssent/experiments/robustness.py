"""Robustness under test-time corruption of the audio/visual input: ``crosssent robustness``.

Each corruption is applied, at each strength, to the A/V of every batch of one split (seeded, the
same corrupted input for every model of the comparison), after alignment and before the model:

- ``noise``: Gaussian noise at a signal-to-noise ratio (dB) per feature, the signal power being
  the feature's mean square over the split's real frames (20 / 10 / 0 dB);
- ``dropout``: each feature value set to zero with probability p (0.1 / 0.3 / 0.5);
- ``frame_drop``: each frame masked, as if missing, with probability p (0.1 / 0.3 / 0.5);
- ``missing``: a whole stream withheld (audio, visual, both);
- ``shift``: the A/V frames moved k positions later against the words (1 / 2 / 4), the frames
  shifted in masked: word-aligned data only (elsewhere frames carry no word timing to shift).

For each model, corruption and strength: the split's metrics and, for ``crosssent`` models, the
mean GMRA gate over real text tokens (does the gate close when the A/V turn to noise?). Output:
``robustness.md`` / ``.csv`` / ``.json`` and one ``robustness-CORRUPTION.png`` per corruption,
every model a line.

- ``waveform`` (real-world noise): white noise added to the recordings themselves at given SNRs
  before any feature is extracted. It needs the recordings, so it is not computed here: each
  strength is a noisy copy of the dataset built from them (``crosssent data build ...
  --noise-snr DB``, with ``--split test`` to build only what is scored), passed with
  ``--waveform``; its clips must be those of the clean split, its SNR is read from its metadata.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from crosssent.atomic_files import write_csv_atomic, write_json_atomic, write_text_atomic
from crosssent.data.collate import Batch, collate
from crosssent.data.dataset import split_rows
from crosssent.experiments.figures import save_png
from crosssent.metrics import compute_metrics
from crosssent.model.onnx_runtime import load_runtime
from crosssent.scoring import STREAMS, align_for_model, outputs

CORRUPTIONS: dict[str, list[Any]] = {
    "noise": [20.0, 10.0, 0.0],
    "dropout": [0.1, 0.3, 0.5],
    "frame_drop": [0.1, 0.3, 0.5],
    "missing": ["audio", "visual", "both"],
    "shift": [1, 2, 4],
}
UNITS = {  # the x-axis of each corruption's figure
    "waveform": "SNR of the waveform (dB)",
    "noise": "SNR (dB)",
    "dropout": "p",
    "frame_drop": "p",
    "missing": "withheld",
    "shift": "tokens",
}
SHOWN = ("corr", "acc2_non0", "mae")


@dataclass(frozen=True)
class Cell:
    model: str
    corruption: str  # "clean" for the uncorrupted split
    strength: Any
    metrics: dict[str, float]
    mean_gate: float | None


def _power(batches: list[Batch], stream: str) -> torch.Tensor | None:
    """Mean square of each feature over the split's real frames."""
    total, count = None, 0
    for batch in batches:
        frames, mask = getattr(batch, stream), getattr(batch, f"{stream}_mask")
        if frames is None or mask is None:
            continue
        real = frames[mask]  # (frames, w)
        total = real.square().sum(0) if total is None else total + real.square().sum(0)
        count += len(real)
    return None if total is None or count == 0 else total / count


def corrupt(
    batch: Batch, corruption: str, strength: Any, generator: torch.Generator, power: dict[str, torch.Tensor | None]
) -> Batch:
    """A copy of ``batch`` with its A/V corrupted (the text is never touched)."""
    changed: dict[str, Any] = {}
    for stream in STREAMS:
        frames, mask = getattr(batch, stream), getattr(batch, f"{stream}_mask")
        if frames is None or mask is None:
            continue
        if corruption == "noise":
            scale = (power[stream] / 10 ** (strength / 10)).sqrt()  # type: ignore[operator]
            frames = frames + torch.randn(frames.shape, generator=generator) * scale
        elif corruption == "dropout":
            frames = frames * (torch.rand(frames.shape, generator=generator) >= strength)
        elif corruption == "frame_drop":
            mask = mask & (torch.rand(mask.shape, generator=generator) >= strength)
        elif corruption == "missing":
            if strength in (stream, "both"):
                frames = mask = None
        elif corruption == "shift":
            k = int(strength)
            frames = torch.cat([frames.new_zeros(frames.shape[0], k, frames.shape[2]), frames[:, :-k]], dim=1)
            mask = torch.cat([mask.new_zeros(mask.shape[0], k), mask[:, :-k]], dim=1)
        else:
            raise ValueError(f"unknown corruption {corruption!r}; choose from {', '.join(CORRUPTIONS)}")
        changed[stream], changed[f"{stream}_mask"] = frames, mask
    return replace(batch, **changed)


def _score(model: Any, rows: Any, task: str, transform: Any = None) -> tuple[dict[str, float], float | None]:
    """The split's metrics and the mean GMRA gate over real text tokens (None without a gate)."""
    preds, labels, gate_sum, tokens = [], [], 0.0, 0
    for batch, out in outputs(model, rows, transform=transform):
        preds.append(out.prediction.float().cpu().numpy())
        labels.append(batch.label.cpu().numpy())
        if model.config.variant == "crosssent" and getattr(out, "gates", None) is not None:
            real = batch.attention_mask.bool()
            gate_sum += float(out.gates.mean(-1)[real].sum())
            tokens += int(real.sum())
    metrics = compute_metrics(np.concatenate(preds), np.concatenate(labels), task)
    return metrics, (gate_sum / tokens if tokens else None)


def measure(
    models: list[Path],
    data: Path,
    *,
    corruptions: list[str],
    split: str = "test",
    seed: int = 0,
    waveform: tuple[Path, ...] = (),
    report: Callable[[str], None] = print,
) -> list[Cell]:
    """Every model under every corruption and strength (and clean); ``waveform``: noisy copies
    of ``data`` (see the module's docstring), scored as the corruption ``waveform``."""
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"--corruption {unknown[0]}: choose from {', '.join(CORRUPTIONS)}")
    noisy = _noisy_copies(waveform)
    cells: list[Cell] = []
    for path in models:
        model, tokenizer, prep = load_runtime(path, "torch")  # once for the clean data and every noisy copy
        aligned, meta = align_for_model(prep, tokenizer, data)
        if "shift" in corruptions and meta.alignment != "word":
            raise ValueError(f"{data}: --corruption shift needs word-aligned data (this is {meta.alignment}); leave shift out")
        rows = split_rows(aligned, split)
        batches = list(DataLoader(rows, batch_size=64, shuffle=False, collate_fn=collate))  # the streams' power
        if not batches:
            raise ValueError(f"{data}: no clips in split {split!r}")
        power = {s: _power(batches, s) for s in STREAMS}
        name = f"{'/'.join(path.parts[-3:-1])} ({model.config.variant})" if path.name == "model" else str(path)
        present = {m for m in STREAMS if getattr(model.config, f"{m}_dim") and any(getattr(b, m) is not None for b in batches)}
        metrics, gate = _score(model, rows, meta.task)
        cells.append(Cell(name, "clean", "", metrics, gate))
        for corruption in corruptions:
            for strength in CORRUPTIONS[corruption]:
                if corruption == "missing" and not ({"audio", "visual"} if strength == "both" else {strength}) <= present:
                    continue  # withholding a stream the model or the data lacks changes nothing
                generator = torch.Generator().manual_seed(seed)  # the same corrupted input for every model
                metrics, gate = _score(
                    model,
                    rows,
                    meta.task,
                    partial(corrupt, corruption=corruption, strength=strength, generator=generator, power=power),
                )
                cells.append(Cell(name, corruption, strength, metrics, gate))
                report(
                    f"  {name}: {corruption} {strength}: Corr {metrics['corr']:.3f}"
                    + (f", gate {gate:.3f}" if gate is not None else "")
                )
        for snr, copy in noisy:
            copy_rows = split_rows(align_for_model(prep, tokenizer, copy)[0], split)
            if list(copy_rows["id"]) != list(rows["id"]):
                raise ValueError(f"{copy}: its {split} clips are not those of {data}; build it from the same recordings")
            metrics, gate = _score(model, copy_rows, meta.task)
            cells.append(Cell(name, "waveform", snr, metrics, gate))
            gated = f", gate {gate:.3f}" if gate is not None else ""
            report(f"  {name}: waveform {snr:g} dB: Corr {metrics['corr']:.3f}{gated}")
    return cells


def _noisy_copies(paths: tuple[Path, ...]) -> list[tuple[float, Path]]:
    """(SNR, dataset) of each noisy copy, from the cleanest down; each must say its SNR."""
    from crosssent.data.dataset import load_meta

    found = []
    for path in paths:
        snr = load_meta(path).audio_noise_snr_db  # the metadata alone; the table is read when scored
        if snr is None:
            raise ValueError(f"--waveform {path}: not a noisy copy (build one with --noise-snr DB)")
        found.append((snr, path))
    snrs = [snr for snr, _ in found]
    if len(set(snrs)) < len(snrs):
        raise ValueError(f"--waveform: two copies have the same SNR ({sorted(snrs)})")
    return sorted(found, key=lambda item: -item[0])


CELL_HEADER = ["model", "corruption", "strength", *SHOWN, "mean_gate"]


def _cell_row(c: Cell) -> list[Any]:
    """One cell as the long table and the CSV give it."""
    gate = "" if c.mean_gate is None else round(c.mean_gate, 4)
    return [c.model, c.corruption, c.strength, *(round(c.metrics[k], 4) for k in SHOWN), gate]


def _corruptions(cells: list[Cell]) -> list[str]:
    """The corruptions the cells hold, in the order measured (clean left out)."""
    return list(dict.fromkeys(c.corruption for c in cells if c.corruption != "clean"))


def _strength(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def render_wide(cells: list[Cell], value: Callable[[Cell], float | None]) -> list[str]:
    """One row per model, one column per corruption (its strengths side by side, as in the
    figures), the value of each cell to three places; "–" where a model has no such value, and
    no row for a model with none at all."""
    models = list(dict.fromkeys(c.model for c in cells))
    corruptions = _corruptions(cells)
    strengths = {k: list(dict.fromkeys(c.strength for c in cells if c.corruption == k)) for k in corruptions}
    found = {(c.model, c.corruption, c.strength): value(c) for c in cells}

    def shown(model: str, corruption: str, strength: Any) -> str:
        v = found.get((model, corruption, strength))
        return "–" if v is None else f"{v:.3f}"

    header = ["model", "clean", *(f"{k} {' / '.join(_strength(s) for s in strengths[k])}" for k in corruptions)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        if all(v is None for (m, _, _), v in found.items() if m == model):
            continue  # nothing to show (a model without a gate in the gate table)
        row = [model, shown(model, "clean", ""), *(" / ".join(shown(model, k, s) for s in strengths[k]) for k in corruptions)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def render_report(cells: list[Cell], *, command: str, title: str, figures: dict[str, str]) -> str:
    """``robustness.md`` (and its published page): the command, Corr and the mean GMRA gate per
    model and corruption (wide), the figures (corruption -> link), then every cell."""
    data = re.search(r"--data (\S+)", command)  # the command as the CLI writes it names both
    split = re.search(r"--split (\S+)", command)
    lines = [f"# Robustness `{title}`", "", f"Command: `{command}`", ""]
    lines += [
        f"## {Path(data.group(1)).name if data else 'data'} ({split.group(1) if split else 'test'} split)",
        "",
        "Corr under each corruption (strengths in the column's order; the seeded corrupted input is the same for every "
        "model; units: noise and waveform SNR in dB, dropout and frame_drop p, shift tokens):",
        "",
        *render_wide(cells, lambda c: c.metrics["corr"]),
    ]
    if any(c.mean_gate is not None for c in cells):
        lines += ["", "## Mean GMRA gate", "", "Over real text tokens; GMRA models only:", ""]
        lines += render_wide(cells, lambda c: c.mean_gate)
    lines += ["", *(f"![{k}]({link})" for k, link in figures.items())]
    lines += ["", "## Every cell", "", "| " + " | ".join(CELL_HEADER) + " |", "|" + "---|" * len(CELL_HEADER)]
    lines += ["| " + " | ".join(str(v) for v in _cell_row(c)) + " |" for c in cells]
    return "\n".join(lines) + "\n"


def read_outputs(out: Path) -> tuple[list[Cell], str]:
    """The cells and command of a finished ``crosssent robustness --out OUT``."""
    path = Path(out) / "robustness.json"
    if not path.is_file():
        raise ValueError(f"{out}: no robustness.json (run crosssent robustness --out {out} first)")
    tree = json.loads(path.read_text(encoding="utf-8"))
    return [Cell(**c) for c in tree["cells"]], tree["command"]


def publish_outputs(out: Path, pages: Path) -> Path:
    """Publish a finished robustness folder as the page ``pages/NAME.md`` (NAME: the folder's
    name), its figures copied to ``figures/NAME-CORRUPTION.png`` beside ``pages``, and the
    pages' index regenerated."""
    from crosssent.atomic_files import write_bytes_atomic
    from crosssent.experiments.report import write_index

    out, pages = Path(out), Path(pages)
    if not pages.is_dir():
        raise ValueError(f"--publish {pages}: needs the folder of published pages (docs/results)")
    cells, command = read_outputs(out)
    sources = {k: out / f"robustness-{k}.png" for k in _corruptions(cells)}
    missing = next((p for p in sources.values() if not p.is_file()), None)
    if missing is not None:  # checked before anything is written
        raise ValueError(f"{missing}: figure missing (rerun crosssent robustness --out {out})")
    figures = {}
    for corruption, source in sources.items():
        name = f"{out.name}-{corruption}.png"
        write_bytes_atomic(pages.parent / "figures" / name, source.read_bytes())
        figures[corruption] = f"../figures/{name}"
    page = pages / f"{out.name}.md"
    report = render_report(cells, command=command, title=out.name, figures=figures)
    write_text_atomic(page, f"<!-- generated by crosssent robustness --publish; do not edit -->\n{report}")
    write_index(pages)
    return page


def write_outputs(cells: list[Cell], out: Path, *, command: str) -> list[Path]:
    """The report (Markdown, CSV, JSON) and one figure per corruption."""
    figures = {k: f"robustness-{k}.png" for k in _corruptions(cells)}
    report = render_report(cells, command=command, title=out.name, figures=figures)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "robustness.md", report)
    write_csv_atomic(out / "robustness.csv", CELL_HEADER, [_cell_row(c) for c in cells])
    write_json_atomic(
        out / "robustness.json",
        {
            "command": command,
            "cells": [
                {
                    "model": c.model,
                    "corruption": c.corruption,
                    "strength": c.strength,
                    "metrics": c.metrics,
                    "mean_gate": c.mean_gate,
                }
                for c in cells
            ],
        },
    )
    written = [out / "robustness.md"]
    models = list(dict.fromkeys(c.model for c in cells))
    for corruption in _corruptions(cells):
        strengths = list(dict.fromkeys(c.strength for c in cells if c.corruption == corruption))
        has_gate = any(c.mean_gate is not None for c in cells)
        fig = Figure(figsize=(11 if has_gate else 6, 4.2), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, 2 if has_gate else 1))  # type: ignore[arg-type]
        positions = list(range(len(strengths) + 1))
        labels = ["clean", *[f"{s:g}" if isinstance(s, float) else str(s) for s in strengths]]
        for model in models:
            mine = [c for c in cells if c.model == model and c.corruption in ("clean", corruption)]
            at = [0 if c.corruption == "clean" else 1 + strengths.index(c.strength) for c in mine]
            axes[0].plot(at, [c.metrics["corr"] for c in mine], marker="o", label=model)
            gated = [(x, c.mean_gate) for x, c in zip(at, mine) if c.mean_gate is not None]
            if has_gate and gated:
                axes[1].plot(*zip(*gated), marker="o", label=model)
        axes[0].set(
            xticks=positions,
            xticklabels=labels,
            xlabel=UNITS[corruption],
            ylabel="test Corr",
            title=f"{corruption}: correlation with the labels",
        )
        axes[0].legend(fontsize=8)
        if has_gate:
            axes[1].set(
                xticks=positions,
                xticklabels=labels,
                xlabel=UNITS[corruption],
                ylabel="mean gate",
                title="GMRA gate (crosssent models)",
            )
            axes[1].ticklabel_format(axis="y", useOffset=False)  # a gate that barely moves reads as its values
        written.append(save_png(fig, out / f"robustness-{corruption}.png"))
    return written
