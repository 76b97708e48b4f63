"""The canonical dataset: a Hugging Face ``datasets`` table (Arrow, memory-mapped) saved to a
folder, one row per clip, plus ``crosssent.json`` with dataset-level metadata.

Why Arrow via ``datasets``: it is the format the field already reads, it memory-maps (a large
feature release does not have to fit in RAM), it stores ragged float sequences without
pickling, and it loads in milliseconds.

Columns: ``id`` (str, unique), ``text`` (str), ``label`` (float32), ``split``
(``train``/``valid``/``test``), optional ``label_T``/``label_A``/``label_V``; when the dataset has
audio: ``audio`` (list of frames, each a list of ``audio_dim`` float32) and ``audio_length``
(int, 0 = this clip has no audio); the same for ``visual``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from datasets import Dataset, Features, List, Value, load_from_disk
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crosssent.atomic_files import atomic_dir
from crosssent.validation_errors import first_problem

META_NAME = "crosssent.json"
SPLITS = ("train", "valid", "test")
UNIMODAL_LABELS = ("label_T", "label_A", "label_V")
Alignment = Literal["word", "unaligned", "clip", "none"]
Task = Literal["mosi", "mosei", "sims"]


class DatasetMeta(BaseModel):
    """Facts about a dataset, written by the importer and checked against every config.

    alignment: ``word`` = one A/V frame per whitespace-separated word of ``text``;
    ``unaligned`` = streams at their own frame rate; ``clip`` = one vector per clip;
    ``none`` = no audio/visual at all.
    task: which metric convention applies (``compute_metrics(..., dataset=task)``).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    task: Task
    label_min: float
    label_max: float
    alignment: Alignment
    audio_dim: int = Field(default=0, ge=0)
    visual_dim: int = Field(default=0, ge=0)
    audio_features: str = ""
    visual_features: str = ""
    # The features/ extractors that computed the audio / visual streams from recordings (crosssent
    # data build), and their versions; empty for features that came with a release. A model trained
    # on such data computes the same streams for a new recording.
    audio_extractor: str = ""
    audio_extractor_version: str = ""
    visual_extractor: str = ""
    visual_extractor_version: str = ""
    # White noise added to every waveform before extraction (dB SNR; crosssent data build
    # --noise-snr): a corrupted copy of a dataset for robustness tests, never training data.
    audio_noise_snr_db: float | None = None
    language: str = "en"
    source: str = ""
    notes: list[str] = []

    @property
    def label_range(self) -> float:
        return self.label_max - self.label_min


def _features(meta: DatasetMeta, extra_labels: list[str]) -> Features:
    cols: dict[str, Any] = {
        "id": Value("string"),
        "text": Value("string"),
        "label": Value("float32"),
        "split": Value("string"),
    }
    for name in extra_labels:
        cols[name] = Value("float32")
    for modality, dim in (("audio", meta.audio_dim), ("visual", meta.visual_dim)):
        if dim:
            cols[modality] = List(List(Value("float32")))
            cols[f"{modality}_length"] = Value("int32")
    return Features(cols)


def validate_columns(columns: dict[str, list], meta: DatasetMeta, *, where: str) -> None:
    """Refuse what would poison training: duplicate ids, bad labels, empty splits, wrong widths.
    ``where`` names the source (a file) in every message."""
    ids = columns["id"]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for clip in ids:
            if clip in seen:
                raise ValueError(f"{where}: clip id {clip!r} occurs more than once")
            seen.add(clip)
    for clip, split in zip(ids, columns["split"]):
        if split not in SPLITS:
            raise ValueError(f"{where}: clip {clip!r} has split {split!r}, expected one of {SPLITS}")
    for split in SPLITS:
        if split not in columns["split"]:
            raise ValueError(f"{where}: split {split!r} is empty")
    for key in ("label", *UNIMODAL_LABELS):
        for clip, value in zip(ids, columns.get(key, [])):
            if value is None or not np.isfinite(value):
                raise ValueError(f"{where}: clip {clip!r} has a NaN/missing {key}")
            if not meta.label_min - 1e-6 <= value <= meta.label_max + 1e-6:
                raise ValueError(f"{where}: clip {clip!r} has {key} {value} outside [{meta.label_min}, {meta.label_max}]")
    for modality, dim in (("audio", meta.audio_dim), ("visual", meta.visual_dim)):
        if not dim:
            if modality in columns:
                raise ValueError(f"{where}: {modality} column present but metadata says {modality}_dim=0")
            continue
        for clip, frames in zip(ids, columns[modality]):
            for frame in frames:
                if len(frame) != dim:
                    raise ValueError(f"{where}: clip {clip!r} has {modality} frames of width {len(frame)}, expected {dim}")


DATASET_ENTRIES = frozenset({META_NAME, "table", ".cache"})  # what a dataset folder holds (.cache: align.py)


def check_output_dir(out_dir: str | Path, inputs: Iterable[str | Path | None] = ()) -> Path:
    """The resolved folder a dataset may be written to. Refused: a file; a folder that holds
    anything but a CrossSent dataset (replacing it would delete what the command did not make);
    a folder that is, or holds, one of the ``inputs``."""
    shown = str(out_dir)
    out = Path(out_dir).expanduser().resolve()
    for source in inputs:
        if source is None:
            continue
        src = Path(source).expanduser().resolve()
        if src == out or out in src.parents:
            raise ValueError(f"--out {shown}: it holds the input {source}; choose a new or empty folder")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ValueError(f"--out {shown}: exists and is not a folder")
        entries = {entry.name for entry in out.iterdir()}
        if entries and not (META_NAME in entries and entries <= DATASET_ENTRIES):
            shown_entries = ", ".join(sorted(entries - DATASET_ENTRIES)[:3]) or "no " + META_NAME
            raise ValueError(
                f"--out {shown}: a folder that is not empty and not a CrossSent dataset ({shown_entries}); "
                "choose a new or empty folder"
            )
    return out


def save_dataset(
    columns: dict[str, list],
    meta: DatasetMeta,
    out_dir: str | Path,
    *,
    where: str,
    inputs: Iterable[str | Path | None] = (),
) -> Path:
    """Validate and write a canonical dataset atomically (a half-written folder never appears).
    It replaces only an earlier dataset; see ``check_output_dir`` for what is refused."""
    out_dir = Path(out_dir)
    resolved = check_output_dir(out_dir, inputs)
    validate_columns(columns, meta, where=where)
    for modality in ("audio", "visual"):
        if modality in columns and f"{modality}_length" not in columns:
            columns = dict(columns, **{f"{modality}_length": [len(f) for f in columns[modality]]})
    extra = [k for k in UNIMODAL_LABELS if k in columns]
    table = Dataset.from_dict(columns, features=_features(meta, extra))
    with atomic_dir(resolved) as tmp:
        table.save_to_disk(str(tmp / "table"))
        (tmp / META_NAME).write_text(meta.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return out_dir


def load_meta(data_dir: str | Path) -> DatasetMeta:
    path = Path(data_dir) / META_NAME
    if not path.is_file():
        raise ValueError(f"{data_dir}: not a CrossSent dataset ({META_NAME} is missing)")
    try:
        return DatasetMeta.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        raise ValueError(f"{path}: invalid metadata ({first_problem(err)})") from None


def load_dataset(data_dir: str | Path) -> tuple[Dataset, DatasetMeta]:
    """(memory-mapped table, metadata) of a canonical dataset folder."""
    meta = load_meta(data_dir)
    table = Path(data_dir) / "table"
    if not table.is_dir():
        raise ValueError(f"{data_dir}: not a complete CrossSent dataset (its table/ folder is missing)")
    try:
        return load_from_disk(str(table)), meta
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{table}: not a readable dataset table ({str(err).splitlines()[0][:200]})") from None


def split_rows(table: Dataset, split: str) -> Dataset:
    """The rows of one split, in order; an empty split is an error."""
    index = [i for i, s in enumerate(table["split"]) if s == split]
    if not index:
        raise ValueError(f"split {split!r} is empty")
    return table.select(index)


def drop_modalities(table: Dataset, meta: DatasetMeta, modalities: Sequence[str], *, where: str) -> tuple[Dataset, DatasetMeta]:
    """The dataset without the named A/V streams (an ablation, or a model trained without them):
    their columns leave the table and their widths become 0 in a copy of the metadata, whose
    ``notes`` say so. Naming a stream the dataset does not have is an error."""
    if not modalities:
        return table, meta
    update: dict[str, Any] = {"notes": [*meta.notes]}
    for modality in modalities:
        if modality not in ("audio", "visual"):
            raise ValueError(f"{where}: unknown modality {modality!r} (audio or visual)")
        if not getattr(meta, f"{modality}_dim"):
            raise ValueError(f"{where}: cannot drop {modality}, the dataset has none")
        table = table.remove_columns([c for c in (modality, f"{modality}_length") if c in table.column_names])
        update |= {f"{modality}_dim": 0, f"{modality}_features": ""}
        update["notes"].append(f"{modality} left out of this run (drop_modalities)")
    meta = meta.model_copy(update=update)
    if not meta.audio_dim and not meta.visual_dim:
        meta = meta.model_copy(update={"alignment": "none"})
    return table, meta


def summarize(table: Dataset, meta: DatasetMeta) -> dict[str, Any]:
    """Counts and label statistics per split, and how many clips lack each modality."""
    splits = np.array(table["split"])
    labels = np.array(table["label"], dtype=np.float64)
    out: dict[str, Any] = {"name": meta.name, "clips": len(table), "splits": {}}
    for split in SPLITS:
        sel = splits == split
        y = labels[sel]
        info: dict[str, Any] = {"clips": int(sel.sum())}
        if sel.any():
            info.update(
                label_mean=round(float(y.mean()), 4),
                label_std=round(float(y.std()), 4),
                label_min=float(y.min()),
                label_max=float(y.max()),
                positive=int((y > 0).sum()),
                neutral=int((y == 0).sum()),
                negative=int((y < 0).sum()),
            )
        for modality in ("audio", "visual"):
            if f"{modality}_length" in table.column_names:
                lengths = np.array(table[f"{modality}_length"])[sel]
                info[f"missing_{modality}"] = int((lengths == 0).sum())
        out["splits"][split] = info
    return out
