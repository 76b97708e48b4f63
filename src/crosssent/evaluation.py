"""Inference and evaluation: predict a split, score it, export/load a model folder.

A model folder (``RUN_DIR/model``) holds everything needed for inference without the training
config: ``config.json`` + ``model.safetensors`` + ``backbone/config.json`` (the model),
tokenizer files, and ``preprocessing.json`` (max_len, alignment, feature widths, task).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from pydantic import BaseModel, ConfigDict, ValidationError
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from crosssent.atomic_files import atomic_dir, write_csv_atomic
from crosssent.data.align import align_dataset, default_cache_root
from crosssent.data.collate import collate
from crosssent.data.dataset import Alignment, DatasetMeta, Task, drop_modalities, load_dataset
from crosssent.metrics import compute_metrics
from crosssent.modeling import CrossSentModel, usable_positions
from crosssent.validation_errors import first_problem

PREPROCESSING_NAME = "preprocessing.json"
STREAMS = ("audio", "visual")  # the optional streams beside the text


class Preprocessing(BaseModel):
    """How the training data was turned into model inputs; new data must match it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_len: int
    alignment: Alignment
    audio_dim: int
    visual_dim: int
    task: Task
    label_min: float
    label_max: float
    trained_on: str

    @classmethod
    def from_meta(cls, meta: DatasetMeta, *, max_len: int) -> "Preprocessing":
        return cls(
            max_len=max_len, alignment=meta.alignment, audio_dim=meta.audio_dim,
            visual_dim=meta.visual_dim, task=meta.task, label_min=meta.label_min,
            label_max=meta.label_max, trained_on=meta.name,
        )


def export_model(
    model: CrossSentModel, tokenizer: PreTrainedTokenizerBase, prep: Preprocessing, folder: Path
) -> None:
    """Write the model folder atomically."""
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / PREPROCESSING_NAME).write_text(prep.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load_preprocessing(folder: str | Path) -> Preprocessing:
    """A model folder's ``preprocessing.json`` alone (no weights loaded)."""
    folder = Path(folder)
    if not (folder / PREPROCESSING_NAME).is_file():
        raise ValueError(f"{folder}: not a CrossSent model folder ({PREPROCESSING_NAME} is missing)")
    try:
        return Preprocessing.model_validate_json((folder / PREPROCESSING_NAME).read_text(encoding="utf-8"))
    except ValidationError as err:
        raise ValueError(f"{folder / PREPROCESSING_NAME}: {first_problem(err)}") from None


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")  # a fast tokenizer, as save_pretrained writes it


def load_exported(folder: str | Path) -> tuple[CrossSentModel, PreTrainedTokenizerBase, Preprocessing]:
    """Model, tokenizer and preprocessing of a complete model folder; an incomplete or
    inconsistent one is refused, never patched up (a missing tokenizer.json would otherwise
    load a stand-in vocabulary that makes every word unknown)."""
    folder = Path(folder)
    prep = load_preprocessing(folder)
    model = CrossSentModel.from_pretrained(folder)
    for name in TOKENIZER_FILES:
        if not (folder / name).is_file():
            raise ValueError(f"{folder}: not a complete model folder ({name} is missing)")
    for name in ("audio_dim", "visual_dim"):
        if getattr(prep, name) != getattr(model.config, name):
            raise ValueError(f"{folder}: {PREPROCESSING_NAME} has {name}={getattr(prep, name)} but "
                             f"config.json has {name}={getattr(model.config, name)}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, TypeError, KeyError) as err:  # transformers' messages run over several lines
        raise ValueError(f"{folder}: its tokenizer files cannot be loaded ({str(err).splitlines()[0].strip()})") from None
    rows = model.backbone.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ValueError(f"{folder}: its tokenizer has {len(tokenizer)} tokens but the encoder's embedding "
                         f"has {rows} rows (tokenizer files from another model?)")
    positions = usable_positions(model.backbone.config)
    if positions is not None and prep.max_len > positions:
        raise ValueError(f"{folder / PREPROCESSING_NAME}: max_len={prep.max_len} but the encoder has "
                         f"{positions} positions")
    return model, tokenizer, prep


def check_compatible(prep: Preprocessing, meta: DatasetMeta, *, where: str) -> None:
    for name in ("audio_dim", "visual_dim", "alignment"):
        if getattr(prep, name) != getattr(meta, name):
            raise ValueError(
                f"{where}: {name}={getattr(meta, name)} but the model was trained with "
                f"{name}={getattr(prep, name)}"
            )



@torch.no_grad()
def predict(
    model: CrossSentModel, aligned: Dataset, *, batch_size: int = 64, hide: tuple[str, ...] = ()
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, labels, predictions) for every row of an aligned table, in order. ``hide``: streams
    withheld from every clip, as if missing (the robustness check of ``crosssent evaluate --hide``)."""
    unknown = [m for m in hide if m not in STREAMS]
    if unknown:
        raise ValueError(f"--hide {unknown[0]}: choose from {', '.join(STREAMS)}")
    model.eval()
    device = next(model.parameters()).device
    ids: list[str] = []
    labels, preds = [], []
    for batch in DataLoader(aligned, batch_size=batch_size, shuffle=False, collate_fn=collate):
        batch = batch.to(device)
        inputs = batch.model_inputs()
        for stream in hide:
            inputs[stream] = inputs[f"{stream}_mask"] = None
        out = model(**inputs)
        ids.extend(batch.id)
        labels.append(batch.label.cpu().numpy())
        preds.append(out.prediction.float().cpu().numpy())
    return ids, np.concatenate(labels), np.concatenate(preds)


@torch.no_grad()
def fusion_summary(model: CrossSentModel, aligned: Dataset, *, batch_size: int = 64) -> dict[str, float] | None:
    """What a trained GMRA does, averaged over the real text tokens of ``aligned``: the mean
    gate value, and how the cross-attention splits between audio and visual keys. (The gate
    acts on the mixed injection Z, so it has no per-modality value; the attention split says
    which modality Z is made of.) None for variants without GMRA."""
    if model.config.variant != "crosssent" or not (model.config.audio_dim or model.config.visual_dim):
        return None
    model.eval()
    device = next(model.parameters()).device
    totals = {"mean_gate": 0.0, "attention_to_audio": 0.0, "attention_to_visual": 0.0}
    tokens = 0
    for batch in DataLoader(aligned, batch_size=batch_size, shuffle=False, collate_fn=collate):
        batch = batch.to(device)
        out = model(**batch.model_inputs(), output_attentions=True)
        mask = batch.attention_mask.bool()
        tokens += int(mask.sum())
        totals["mean_gate"] += float(out.gates.mean(-1)[mask].sum())
        weights = out.cross_attentions.mean(1)  # (B, L, La + Lv), audio keys first
        audio_keys = batch.audio.shape[1] if (batch.audio is not None and model.config.audio_dim) else 0
        totals["attention_to_audio"] += float(weights[..., :audio_keys].sum(-1)[mask].sum())
        totals["attention_to_visual"] += float(weights[..., audio_keys:].sum(-1)[mask].sum())
    return {k: round(v / max(tokens, 1), 4) for k, v in totals.items()}


def split_rows(aligned: Dataset, split: str) -> Dataset:
    index = [i for i, s in enumerate(aligned["split"]) if s == split]
    if not index:
        raise ValueError(f"split {split!r} is empty")
    return aligned.select(index)


def score_splits(
    model: CrossSentModel, aligned: Dataset, task: str, splits: tuple[str, ...], *, hide: tuple[str, ...] = ()
) -> tuple[dict[str, dict[str, float]], list[tuple[str, str, float, float]]]:
    """Metrics per split and prediction rows (id, split, label, prediction)."""
    metrics: dict[str, dict[str, float]] = {}
    rows: list[tuple[str, str, float, float]] = []
    for split in splits:
        ids, labels, preds = predict(model, split_rows(aligned, split), hide=hide)
        metrics[split] = compute_metrics(preds, labels, task)
        rows.extend((i, split, float(y), float(p)) for i, y, p in zip(ids, labels, preds))
    return metrics, rows


def write_predictions(path: Path, rows: list[tuple[str, str, float, float]]) -> None:
    write_csv_atomic(path, ["id", "split", "label", "prediction"],
                     ((i, s, f"{y:.6g}", f"{p:.6g}") for i, s, y, p in rows))


def read_predictions(path: Path, split: str) -> list[tuple[str, float, float]]:
    """(id, label, prediction) of one split of a file that ``write_predictions`` wrote."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [(r["id"], float(r["label"]), float(r["prediction"])) for r in csv.DictReader(handle) if r["split"] == split]


def evaluate_folder(
    model_dir: str | Path, data_dir: str | Path, splits: tuple[str, ...], *, hide: tuple[str, ...] = ()
) -> tuple[dict, list]:
    """Load an exported model, align a canonical dataset the way it was trained, score it
    (``hide``: streams withheld from every clip, see ``predict``)."""
    model, tokenizer, prep = load_exported(model_dir)
    table, meta = load_dataset(data_dir)
    # A model trained without a stream (data.drop_modalities) ignores it in new data too.
    unused = [m for m in STREAMS if getattr(meta, f"{m}_dim") and not getattr(prep, f"{m}_dim")]
    table, meta = drop_modalities(table, meta, unused, where=str(data_dir))
    check_compatible(prep, meta, where=str(data_dir))
    aligned = align_dataset(table, meta, tokenizer, max_len=prep.max_len, cache_root=default_cache_root(Path(data_dir)))
    return score_splits(model, aligned, meta.task, splits, hide=hide)


def format_table(metrics: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one row per metric, one column per split."""
    splits = list(metrics)
    lines = ["metric        " + "".join(f"{s:>10}" for s in splits)]
    for key in metrics[splits[0]]:
        lines.append(f"{key:<14}" + "".join(f"{metrics[s][key]:>10.4f}" for s in splits))
    return "\n".join(lines)


def compare_runs(run_dirs: list[Path], split: str = "test") -> str:
    """Side-by-side metrics of finished runs: one row per metric, one column per run."""
    import json

    results = {}
    for run in run_dirs:
        path = Path(run) / "metrics.json"
        if not path.is_file():
            raise ValueError(f"{run}: no metrics.json (the run has not finished)")
        metrics = json.loads(path.read_text(encoding="utf-8"))
        if split not in metrics:
            raise ValueError(f"{path}: has no {split!r} metrics")
        results[Path(run).name] = metrics[split]
    return format_table(results)
