"""A label table plus per-modality feature tables -> the canonical format.

Label table (CSV, MMSA's ``label.csv`` layout): ``video_id, clip_id, text, label, mode`` and
optionally ``label_T, label_A, label_V``; the clip id is ``<video_id>_<clip_id>``; ``mode`` is
``train``/``valid``/``test``.

Feature tables, keyed by that clip id:
- CSV: first column ``id``, then one column per feature; several rows with the same id are the
  frames of that clip, in file order;
- NPZ (read with ``allow_pickle=False``): one array per clip id, 1-D (a clip vector) or 2-D
  (frames x features).
Label rows without features get an empty stream (the clip has no such modality); a feature row
whose id has no label row is an error (it usually means mismatched id conventions).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from crosssent.data.csv_files import csv_rows, read_csv
from crosssent.data.dataset import UNIMODAL_LABELS, DatasetMeta, save_dataset
from crosssent.data.sources.mmsa import LABEL_RANGE

LABEL_COLUMNS = ("video_id", "clip_id", "text", "label", "mode")


def _float(value: str, *, where: str, clip: str, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{where}: clip {clip!r} has a non-numeric {column} {value!r}") from None


def read_labels(path: Path, *, text_column: str = "text") -> dict[str, list]:
    """The label table's columns; ``text_column`` names the transcript column to read as ``text``."""
    header, rows = read_csv(path, required=[text_column if c == "text" else c for c in LABEL_COLUMNS])
    extra = [c for c in UNIMODAL_LABELS if c in header]
    cols: dict[str, list] = {k: [] for k in ("id", "text", "label", "split", *extra)}
    for row in rows:
        clip = f"{row['video_id']}_{row['clip_id']}"
        cols["id"].append(clip)
        cols["text"].append(row[text_column].strip())
        cols["label"].append(_float(row["label"], where=str(path), clip=clip, column="label"))
        cols["split"].append(row["mode"].strip())
        for key in extra:
            cols[key].append(_float(row[key], where=str(path), clip=clip, column=key))
    return cols


def _npz_features(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            table = {k: np.atleast_2d(np.asarray(archive[k], dtype=np.float32)) for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(f"{path}: cannot read ({type(err).__name__}: {str(err)[:200]})") from None
    for clip, array in table.items():
        if array.ndim != 2:
            raise ValueError(
                f"{path}: clip {clip!r} has a {array.ndim}-D array {array.shape}; "
                "expected 1-D (a clip vector) or 2-D (frames x features)"
            )
    return table


def read_features(path: Path) -> dict[str, np.ndarray]:
    """clip id -> (frames, dim) float32 array."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    if path.suffix == ".npz":
        return _npz_features(path)
    if path.suffix != ".csv":
        raise ValueError(f"{path}: feature tables must be .csv or .npz")
    frames: dict[str, list[list[float]]] = {}
    rows = csv_rows(path)
    first = next(rows, None)
    header = first[1] if first else []
    if not header or header[0].strip() != "id":
        raise ValueError(f"{path}: the first column must be 'id'")
    for line, row in rows:
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} fields, header has {len(header)}")
        try:
            frames.setdefault(row[0], []).append([float(v) for v in row[1:]])
        except ValueError:
            raise ValueError(f"{path}: line {line} (clip {row[0]!r}) has a non-numeric feature") from None
    return {k: np.asarray(v, dtype=np.float32) for k, v in frames.items()}


def convert(
    labels: str | Path,
    out_dir: str | Path,
    *,
    name: str,
    task: str,
    audio: Path | None,
    visual: Path | None,
    alignment: str,
    strict: bool = False,
) -> tuple[Path, list[str]]:
    labels = Path(labels)
    if task not in LABEL_RANGE:
        raise ValueError(f"--task must be one of {sorted(LABEL_RANGE)}, got {task!r}")
    if alignment not in ("word", "unaligned", "clip"):
        raise ValueError(f"--alignment must be word, unaligned or clip, got {alignment!r}")
    cols = read_labels(labels)
    known = set(cols["id"])
    report: list[str] = []
    dims: dict[str, int] = {}
    for modality, path in (("audio", audio), ("visual", visual)):
        if path is None:
            continue
        table = read_features(path)
        stray = sorted(set(table) - known)
        if stray:
            raise ValueError(f"{path}: clip id {stray[0]!r} has no row in {labels} ({len(stray)} such ids)")
        widths = {a.shape[1] for a in table.values()}
        if len(widths) != 1:
            raise ValueError(f"{path}: clips have different feature widths {sorted(widths)}")
        dims[modality] = widths.pop()
        for clip, array in table.items():
            if not np.isfinite(array).all():
                if strict:
                    raise ValueError(f"{path}: clip {clip!r} has NaN/inf features (--strict)")
                table[clip] = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
                report.append(f"{path.name}: clip {clip}: NaN/inf replaced by 0")
        cols[modality] = [table[c].tolist() if c in table else [] for c in cols["id"]]
        missing = sum(c not in table for c in cols["id"])
        if missing:
            report.append(f"{modality}: {missing} clip(s) without features (treated as missing)")
    lo, hi = LABEL_RANGE[task]
    meta = DatasetMeta(
        name=name,
        task=task,  # type: ignore[arg-type]
        label_min=lo,
        label_max=hi,
        alignment=alignment if dims else "none",  # type: ignore[arg-type]
        audio_dim=dims.get("audio", 0),
        visual_dim=dims.get("visual", 0),
        audio_features=audio.name if audio else "",
        visual_features=visual.name if visual else "",
        source=f"tables: {labels.name}",
        notes=report,
    )
    return save_dataset(cols, meta, out_dir, where=str(labels), inputs=(labels, audio, visual)), report
