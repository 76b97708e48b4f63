"""Scoring a model on a canonical dataset: predict a split, compute its metrics, summarise
what GMRA does. Shared by training (the end of every run), ``crosssent evaluate`` and the
experiment reports; the model folder itself is ``crosssent.model.folder``'s, the run folder
``crosssent.train.run_dir``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from crosssent.data.align import align_dataset, default_cache_root
from crosssent.data.collate import Batch, collate
from crosssent.data.dataset import DatasetMeta, drop_modalities, load_dataset, split_rows
from crosssent.metrics import compute_metrics
from crosssent.model.folder import Preprocessing, check_compatible
from crosssent.model.modeling import CrossSentModel
from crosssent.model.onnx_runtime import load_runtime

STREAMS = ("audio", "visual")  # the optional streams beside the text
PredictionRow = tuple[str, str, float, float]  # id, split, label, prediction


def model_device(model: Any) -> torch.device:
    """Where a model's weights are (the CPU for an ONNX Runtime model, which has none in torch)."""
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def outputs(
    model: Any,
    rows: Dataset,
    *,
    batch_size: int = 64,
    attentions: bool = False,
    transform: Callable[[Batch], Batch] | None = None,
) -> Iterator[tuple[Batch, Any]]:
    """Each batch of ``rows`` in order with the model's output for it, without gradients;
    ``transform`` changes a batch before the model sees it (a withheld stream, a corruption)."""
    model.eval()
    device = model_device(model)
    for batch in DataLoader(rows, batch_size=batch_size, shuffle=False, collate_fn=collate):
        batch = (transform(batch) if transform is not None else batch).to(device)
        with torch.inference_mode():  # held per batch: never across the yield, into the caller
            out = model(**batch.model_inputs(), output_attentions=attentions) if attentions else model(**batch.model_inputs())
        yield batch, out


def without(streams: tuple[str, ...]) -> Callable[[Batch], Batch]:
    """A batch transform that withholds ``streams`` from every clip, as if missing."""
    gone: dict[str, Any] = {name: None for m in streams for name in (m, f"{m}_mask")}
    return lambda batch: replace(batch, **gone)


def predict(
    model: Any, aligned: Dataset, *, batch_size: int = 64, hide: tuple[str, ...] = ()
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, labels, predictions) for every row of an aligned table, in order. ``hide``: streams
    withheld from every clip, as if missing (the robustness check of ``crosssent evaluate --hide``)."""
    unknown = [m for m in hide if m not in STREAMS]
    if unknown:
        raise ValueError(f"--hide {unknown[0]}: choose from {', '.join(STREAMS)}")
    ids: list[str] = []
    labels, preds = [], []
    for batch, out in outputs(model, aligned, batch_size=batch_size, transform=without(hide) if hide else None):
        ids.extend(batch.id)
        labels.append(batch.label.cpu().numpy())
        preds.append(out.prediction.float().cpu().numpy())
    return ids, np.concatenate(labels), np.concatenate(preds)


def fusion_summary(model: CrossSentModel, aligned: Dataset, *, batch_size: int = 64) -> dict[str, float] | None:
    """What a trained GMRA does, averaged over the real text tokens of ``aligned``: the mean
    gate value, and how the cross-attention splits between audio and visual keys. (The gate
    acts on the mixed injection Z, so it has no per-modality value; the attention split says
    which modality Z is made of.) None for variants without GMRA."""
    if model.config.variant != "crosssent" or not (model.config.audio_dim or model.config.visual_dim):
        return None
    totals = {"mean_gate": 0.0, "attention_to_audio": 0.0, "attention_to_visual": 0.0}
    tokens = 0
    for batch, out in outputs(model, aligned, batch_size=batch_size, attentions=True):
        mask = batch.attention_mask.bool()
        tokens += int(mask.sum())
        totals["mean_gate"] += float(out.gates.mean(-1)[mask].sum())
        weights = out.cross_attentions.mean(1)  # (B, L, La + Lv), audio keys first
        audio_keys = batch.audio.shape[1] if (batch.audio is not None and model.config.audio_dim) else 0
        totals["attention_to_audio"] += float(weights[..., :audio_keys].sum(-1)[mask].sum())
        totals["attention_to_visual"] += float(weights[..., audio_keys:].sum(-1)[mask].sum())
    return {k: round(v / max(tokens, 1), 4) for k, v in totals.items()}


def score_splits(
    model: Any,
    aligned: Dataset,
    task: str,
    splits: tuple[str, ...],
    *,
    hide: tuple[str, ...] = (),
    scale: float = 1.0,
) -> tuple[dict[str, dict[str, float]], list[PredictionRow]]:
    """Metrics per split and prediction rows (id, split, label, prediction); ``scale`` maps the
    predictions onto the data's label range first (``label_scale``)."""
    metrics: dict[str, dict[str, float]] = {}
    rows: list[PredictionRow] = []
    for split in splits:
        ids, labels, preds = predict(model, split_rows(aligned, split), hide=hide)
        preds = preds * scale
        metrics[split] = compute_metrics(preds, labels, task)
        rows.extend((i, split, float(y), float(p)) for i, y, p in zip(ids, labels, preds))
    return metrics, rows


def evaluate_folder(
    model_dir: str | Path,
    data_dir: str | Path,
    splits: tuple[str, ...],
    *,
    hide: tuple[str, ...] = (),
    runtime: str = "torch",
    transfer: bool = False,
) -> tuple[dict, list]:
    """Load an exported model (``runtime``: torch, onnx, int8) and score it on a canonical
    dataset, as ``evaluate_loaded`` does."""
    model, tokenizer, prep = load_runtime(Path(model_dir), runtime)
    return evaluate_loaded(model, tokenizer, prep, data_dir, splits, hide=hide, transfer=transfer)


def evaluate_loaded(
    model: Any,
    tokenizer: Any,
    prep: Preprocessing,
    data_dir: str | Path,
    splits: tuple[str, ...],
    *,
    hide: tuple[str, ...] = (),
    transfer: bool = False,
) -> tuple[dict, list]:
    """Align a canonical dataset the way a loaded model was trained and score it (``hide``:
    streams withheld from every clip, see ``predict``; ``transfer``: data from another corpus,
    see ``align_for_model``, with the predictions mapped linearly from the model's label range to
    the data's before the data's metrics are taken). A model scored on several datasets is
    loaded once."""
    aligned, meta = align_for_model(prep, tokenizer, data_dir, transfer=transfer)
    scale = label_scale(prep.label_min, prep.label_max, meta.label_min, meta.label_max) if transfer else 1.0
    return score_splits(model, aligned, meta.task, splits, hide=hide, scale=scale)


def label_scale(model_min: float, model_max: float, data_min: float, data_max: float) -> float:
    """The factor that maps a prediction on the model's label scale to the data's: both scales
    are symmetric around 0 (neutral), so the map is linear through 0, e.g. x3 from CH-SIMS's
    [-1, 1] to MOSI's [-3, 3]."""
    if model_min != -model_max or data_min != -data_max:
        raise ValueError(
            f"label scales [{model_min}, {model_max}] -> [{data_min}, {data_max}]: only scales symmetric around 0 are mapped"
        )
    return data_max / model_max


def load_for_scoring(
    model_dir: str | Path, data_dir: str | Path, *, runtime: str = "torch", transfer: bool = False
) -> tuple[Any, Any, Dataset, DatasetMeta]:
    """An exported model (in ``runtime``), its tokenizer, and a canonical dataset aligned the way
    it was trained. ``transfer``: the data comes from another corpus: a stream it lacks, or has
    at another width or alignment, is left empty for every clip (as for a clip whose stream is
    missing), and one the model never read is dropped; the text is tokenized as the model's was."""
    model, tokenizer, prep = load_runtime(Path(model_dir), runtime)
    aligned, meta = align_for_model(prep, tokenizer, data_dir, transfer=transfer)
    return model, tokenizer, aligned, meta


def align_for_model(
    prep: Preprocessing, tokenizer: Any, data_dir: str | Path, *, transfer: bool = False
) -> tuple[Dataset, DatasetMeta]:
    """A canonical dataset aligned the way the model of ``prep`` and ``tokenizer`` was trained
    (``transfer``: see ``load_for_scoring``), and its metadata as aligned."""
    table, meta = load_dataset(data_dir)
    # A model trained without a stream (data.drop_modalities) ignores it in new data too.
    unused = [m for m in STREAMS if getattr(meta, f"{m}_dim") and not getattr(prep, f"{m}_dim")]
    if transfer:
        unused += [
            m
            for m in STREAMS
            if getattr(meta, f"{m}_dim")
            and m not in unused
            and (getattr(meta, f"{m}_dim") != getattr(prep, f"{m}_dim") or meta.alignment != prep.alignment)
        ]
    table, meta = drop_modalities(table, meta, unused, where=str(data_dir))
    if transfer:
        empty: dict[str, Any] = {}
        for m in STREAMS:
            if getattr(prep, f"{m}_dim") and not getattr(meta, f"{m}_dim"):
                table = table.add_column(m, [[] for _ in range(len(table))])
                table = table.add_column(f"{m}_length", [0] * len(table))
                empty[f"{m}_dim"] = getattr(prep, f"{m}_dim")
        meta = meta.model_copy(update={**empty, "alignment": prep.alignment})
    check_compatible(prep, meta, where=str(data_dir))
    cache = default_cache_root(Path(data_dir)) if not transfer else None
    aligned = align_dataset(table, meta, tokenizer, max_len=prep.max_len, cache_root=cache)
    return aligned, meta


def format_table(metrics: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one row per metric, one column per split."""
    splits = list(metrics)
    lines = ["metric        " + "".join(f"{s:>10}" for s in splits)]
    for key in metrics[splits[0]]:
        lines.append(f"{key:<14}" + "".join(f"{metrics[s][key]:>10.4f}" for s in splits))
    return "\n".join(lines)
