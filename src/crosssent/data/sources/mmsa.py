"""MMSA feature pickles (``aligned_50.pkl``, ``unaligned_50.pkl``, ``unaligned_39.pkl``) ->
the canonical format.

Schema read: ``{"train"|"valid"|"test": {"id", "raw_text", "audio" (N, T, da), "vision"
(N, T, dv), "audio_lengths"?, "vision_lengths"?, "regression_labels" (N,),
"regression_labels_T/A/V"?}}``. The text is re-tokenised from ``raw_text`` by our backbone;
MMSA's own BERT/GloVe text features are not used.

A/V streams are kept as "unaligned" sequences: their real frames (the first ``*_lengths``
rows; for pickles without lengths, the frames that are not all zero) are later resampled to
the token timeline. This treats ``aligned_50`` correctly too, whatever its padding side.

MMSA's MOSI/MOSEI audio holds ``-inf``/NaN values. They are counted and reported; by default
they become 0 (the value of a silent, normalised feature); ``strict=True`` refuses the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosssent.data.dataset import SPLITS, DatasetMeta, save_dataset
from crosssent.data.safe_pickle import safe_load

LABEL_RANGE = {"mosi": (-3.0, 3.0), "mosei": (-3.0, 3.0), "sims": (-1.0, 1.0)}
REQUIRED = ("id", "raw_text", "regression_labels")


def _real_frames(seq: np.ndarray, length: int | None) -> np.ndarray:
    if length is not None:
        return seq[: int(length)]
    return seq[np.abs(seq).sum(axis=1) > 0]


def _clean(name: str, array: np.ndarray, *, strict: bool, where: str, report: list[str]) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        n_nan, n_inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        if strict:
            raise ValueError(f"{where}: {name} holds {n_nan} NaN and {n_inf} inf values (--strict)")
        report.append(f"{name}: replaced {n_nan} NaN and {n_inf} inf values by 0")
        array = np.where(bad, 0.0, array).astype(np.float32)
    return array


def convert(source: str | Path, out_dir: str | Path, *, name: str, task: str, strict: bool = False) -> tuple[Path, list[str]]:
    source = Path(source)
    where = str(source)
    if task not in LABEL_RANGE:
        raise ValueError(f"--task must be one of {sorted(LABEL_RANGE)}, got {task!r}")
    data = safe_load(source)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a dict of splits, found {type(data).__name__}")
    report: list[str] = []
    cols: dict[str, list] = {k: [] for k in ("id", "text", "label", "split")}
    dims: dict[str, int] = {}
    has_unimodal = None
    for split in SPLITS:
        part = data.get(split)
        if not isinstance(part, dict):
            raise ValueError(f"{where}: missing key {split!r} (expected train/valid/test)")
        for key in REQUIRED:
            if key not in part:
                raise ValueError(f"{where}: split {split!r} has no key {key!r}")
        n = len(part["id"])
        unimodal = all(f"regression_labels_{m}" in part for m in "TAV")
        has_unimodal = unimodal if has_unimodal is None else (has_unimodal and unimodal)
        cols["id"].extend(str(i) for i in part["id"])
        cols["text"].extend(str(t).strip() for t in part["raw_text"])
        labels = np.asarray(part["regression_labels"], dtype=np.float64).reshape(-1)
        if len(labels) != n:
            raise ValueError(f"{where}: {split}.regression_labels has {len(labels)} values for {n} ids")
        cols["label"].extend(labels.tolist())
        cols["split"].extend([split] * n)
        for m in "TAV":
            if f"regression_labels_{m}" in part:
                values = np.asarray(part[f"regression_labels_{m}"], dtype=np.float64).reshape(-1)
                cols.setdefault(f"label_{m}", []).extend(values.tolist())
        for ours, theirs in (("audio", "audio"), ("visual", "vision")):
            if theirs not in part:
                continue
            feats = _clean(f"{split}.{theirs}", part[theirs], strict=strict, where=where, report=report)
            if feats.ndim != 3 or feats.shape[0] != n:
                raise ValueError(f"{where}: {split}.{theirs} has shape {feats.shape}, expected ({n}, frames, dim)")
            if dims.setdefault(ours, feats.shape[2]) != feats.shape[2]:
                raise ValueError(f"{where}: {split}.{theirs} has width {feats.shape[2]}, other splits {dims[ours]}")
            lengths = part.get(f"{theirs}_lengths")
            cols.setdefault(ours, []).extend(
                _real_frames(feats[i], None if lengths is None else lengths[i]).tolist() for i in range(n)
            )
    if not has_unimodal:
        for m in "TAV":
            cols.pop(f"label_{m}", None)
    lo, hi = LABEL_RANGE[task]
    meta = DatasetMeta(
        name=name,
        task=task,  # type: ignore[arg-type]
        label_min=lo,
        label_max=hi,
        alignment="unaligned" if dims else "none",
        audio_dim=dims.get("audio", 0),
        visual_dim=dims.get("visual", 0),
        audio_features=f"MMSA audio ({dims.get('audio', 0)}-d)" if "audio" in dims else "",
        visual_features=f"MMSA vision ({dims.get('visual', 0)}-d)" if "visual" in dims else "",
        source=f"MMSA pickle {source.name}",
        notes=report or ["no NaN/inf values in the features"],
    )
    counts = {s: cols["split"].count(s) for s in SPLITS}
    report.append(f"clips: {counts}; audio_dim={meta.audio_dim}, visual_dim={meta.visual_dim}")
    return save_dataset(cols, meta, out_dir, where=where, inputs=(source,)), report
