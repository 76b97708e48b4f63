"""Importers for the public releases described in ``shared/data/SOURCES.md``.

``crosssent data import NAME SOURCE_DIR --out DIR`` where SOURCE_DIR is the folder holding
``mosi/``, ``mosei/`` and ``sims/``:

- ``mosi-clip``: CMU-MOSI, official split (1284/229/686), original transcripts, continuous
  labels, and the bc-LSTM release's 73-d openSMILE **audio** vectors (one per clip), joined by
  clip id through the release's row index (``text_{train,test}.csv`` column 0 points into
  ``transcripts.csv``; the audio rows line up with those rows). The release's text and video
  features are deliberately left out: their extractors were trained with labels on the
  release's own training split, which holds 558 of the 686 official test clips, so they leak
  test labels under the official split.
- ``mosi-bclstm``: a secondary protocol, the release's own speaker-independent split (62
  training videos, 31 test videos, test clips unseen by its extractors), with its audio (73-d)
  and video (100-d) vectors; a validation set of whole videos is carved deterministically from
  the training videos. Its training features were fitted to their labels: a model can learn to
  over-trust them, which is a robustness case for the gate, not a clean benchmark.
- ``mosei-text`` / ``sims-text``: transcripts, labels and official splits, no audio/visual.
- ``sims-text-en``: ``sims-text`` with the release's machine English translation (``text_en``)
  in place of the Chinese transcript, for English-only backbones; same clips, labels and split.
- ``sims-text-bilingual``: ``sims-text`` whose training split also holds each training clip's
  English translation as a second row (id ``<clip>#en``, same label), for a multilingual
  backbone: twice the training text; validation and test are the Chinese clips alone.

Labels and transcripts come from the MMSA-style ``derived/label.csv`` tables (CSV, no pickle).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crosssent.data.dataset import SPLITS, DatasetMeta, Task, check_output_dir, save_dataset
from crosssent.data.sources.tables import read_labels

LEAK_NOTE = (
    "The bc-LSTM text and video features are NOT included: their extractors were trained with "
    "labels on the release's training split, which contains 558 of the 686 official MOSI test "
    "clips (a ridge regression on the video features alone reaches about 84% Non0-ACC2 on the "
    "official test split but about 50% on the 128 test clips the extractor never saw). Only the "
    "unsupervised openSMILE audio vectors are used."
)
BCLSTM_NOTE = (
    "Secondary protocol: the bc-LSTM release's own speaker-independent split (62 train / 31 test "
    "videos); validation = whole training videos chosen by hash. The extractors saw the training "
    "clips' labels, so training features are more label-aligned than test features: expect a "
    "model to over-trust them."
)


# what both MOSI imports with the bc-LSTM release's clip-level audio share
_MOSI_CLIP_AUDIO: dict[str, Any] = {"task": "mosi", "label_min": -3, "label_max": 3, "alignment": "clip", "audio_dim": 73}


def _need(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    return path


def _read_rows(path: Path) -> list[list[str]]:
    with _need(path).open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.reader(handle) if row]


def bclstm_features(source: Path) -> dict[str, dict[str, np.ndarray]]:
    """clip id -> {"audio": (73,), "video": (100,), "bc_split": ...} from the bc-LSTM release."""
    base = source / "mosi" / "bc-LSTM" / "data"
    transcripts = _read_rows(base / "transcripts.csv")
    out: dict[str, dict] = {}
    for split in ("train", "test"):
        index_rows = _read_rows(base / f"text_{split}.csv")
        audio = _read_rows(base / "audio" / f"audio_{split}0.csv")
        video = _read_rows(base / "video" / f"video_{split}0.csv")
        if not len(index_rows) == len(audio) == len(video):
            raise ValueError(f"{base}: {split} files have {len(index_rows)}/{len(audio)}/{len(video)} rows; expected equal")
        for idx, a, v in zip(index_rows, audio, video):
            row = int(float(idx[0]))
            clip = transcripts[row][0]
            if clip in out:
                raise ValueError(f"{base}: clip {clip!r} appears twice in the bc-LSTM files")
            # the last column of *_{split}0.csv is the binary label, not a feature
            out[clip] = {
                "audio": np.asarray(a[:-1], dtype=np.float32),
                "video": np.asarray(v[:-1], dtype=np.float32),
                "bc_split": split,
            }
    return out


def _videos_in_several_splits(cols: dict[str, list], video_of: dict[str, str]) -> list[str]:
    splits_of: dict[str, set[str]] = {}
    for clip, split in zip(cols["id"], cols["split"]):
        splits_of.setdefault(video_of[clip], set()).add(split)
    return sorted(v for v, s in splits_of.items() if len(s) > 1)


def _check_split_leakage(cols: dict[str, list], video_of: dict[str, str], where: str) -> None:
    """MOSI/MOSEI splits are speaker (video) independent: refuse a video in two splits."""
    shared = _videos_in_several_splits(cols, video_of)
    if shared:
        raise ValueError(f"{where}: video {shared[0]!r} is in more than one split ({len(shared)} such videos)")


def _video_of(labels_path: Path) -> dict[str, str]:
    with labels_path.open(newline="", encoding="utf-8") as handle:
        return {f"{r['video_id']}_{r['clip_id']}": r["video_id"] for r in csv.DictReader(handle)}


def import_mosi_clip(source: Path, out: Path) -> tuple[Path, list[str]]:
    labels = _need(source / "mosi" / "derived" / "label.csv")
    cols = read_labels(labels)
    feats = bclstm_features(source)
    missing = [c for c in cols["id"] if c not in feats]
    if missing:
        raise ValueError(f"{labels}: clip {missing[0]!r} has no bc-LSTM audio row ({len(missing)} such clips)")
    stray = sorted(set(feats) - set(cols["id"]))
    if stray:
        raise ValueError(f"bc-LSTM release: clip {stray[0]!r} has no label row in {labels}")
    cols["audio"] = [[feats[c]["audio"].tolist()] for c in cols["id"]]
    _check_split_leakage(cols, _video_of(labels), str(labels))
    meta = DatasetMeta(
        name="mosi-clip",
        **_MOSI_CLIP_AUDIO,
        audio_features="bc-LSTM release: 73-d openSMILE utterance vector (unsupervised)",
        source="CMU-MOSI: MERBench labels/transcripts (derived/label.csv), bc-LSTM audio; official split",
        notes=[LEAK_NOTE],
    )
    return save_dataset(cols, meta, out, where=str(labels)), _report(cols)


def import_mosi_bclstm(source: Path, out: Path, *, valid_videos: int = 6) -> tuple[Path, list[str]]:
    labels = _need(source / "mosi" / "derived" / "label.csv")
    cols = read_labels(labels)
    feats = bclstm_features(source)
    video_of = _video_of(labels)
    train_videos = sorted({video_of[c] for c in cols["id"] if feats[c]["bc_split"] == "train"})
    # deterministic, content-independent choice of whole videos for validation
    valid = set(sorted(train_videos, key=lambda v: hashlib.sha1(v.encode()).hexdigest())[:valid_videos])
    cols["split"] = [
        "test" if feats[c]["bc_split"] == "test" else ("valid" if video_of[c] in valid else "train") for c in cols["id"]
    ]
    cols["audio"] = [[feats[c]["audio"].tolist()] for c in cols["id"]]
    cols["visual"] = [[feats[c]["video"].tolist()] for c in cols["id"]]
    _check_split_leakage(cols, video_of, str(labels))
    meta = DatasetMeta(
        name="mosi-bclstm",
        **_MOSI_CLIP_AUDIO,
        visual_dim=100,
        audio_features="bc-LSTM release: 73-d openSMILE utterance vector",
        visual_features="bc-LSTM release: 100-d 3D-CNN utterance vector (trained on this split's train labels)",
        source="CMU-MOSI with the bc-LSTM release's speaker-independent split",
        notes=[BCLSTM_NOTE, f"validation videos: {sorted(valid)}"],
    )
    return save_dataset(cols, meta, out, where=str(labels)), _report(cols)


@dataclass(frozen=True)
class TextRelease:
    """A text-only release: where its label table is, and how to read it."""

    table: tuple[str, ...]  # path of the label table under SOURCE_DIR
    task: Task
    label_range: tuple[float, float]
    language: str
    text_column: str  # the table column read as the transcript
    note: str
    train_translation_column: str | None = None  # also add each training clip in this column's text


SIMS_TABLE = ("sims", "derived", "label.csv")
_SIMS: dict[str, Any] = {"table": SIMS_TABLE, "task": "sims", "label_range": (-1.0, 1.0)}  # every CH-SIMS release
TEXT_RELEASES = {
    "mosei-text": TextRelease(
        table=("mosei", "mmsa_label_csv", "label.csv"),
        task="mosei",
        label_range=(-3.0, 3.0),
        language="en",
        text_column="text",
        note="MMSA-style label table with 22788 of the 22856 official clips (68 missing in the "
        "source); official train/valid/test assignment as given by the table",
    ),
    "sims-text": TextRelease(
        **_SIMS,
        language="zh",
        text_column="text",
        note="CH-SIMS v1 official split; original Chinese transcripts; no unimodal labels available",
    ),
    "sims-text-en": TextRelease(  # the same clips, labels and split as sims-text
        **_SIMS,
        language="en",
        text_column="text_en",
        note="CH-SIMS v1 official split; machine English translation of the Chinese transcripts "
        "(column text_en), for English-only backbones; no unimodal labels available",
    ),
    "sims-text-bilingual": TextRelease(  # sims-text plus English copies of the training clips
        **_SIMS,
        language="zh+en",
        text_column="text",
        train_translation_column="text_en",
        note="CH-SIMS v1 official split; original Chinese transcripts, and in the training split "
        "also each clip's machine English translation as a second row (id <clip>#en, same "
        "label): translation as data augmentation for a multilingual backbone; validation "
        "and test hold the Chinese clips alone; no unimodal labels available",
    ),
}


def _with_translated_training_rows(cols: dict[str, list], translated: dict[str, list]) -> dict[str, list]:
    """``cols`` plus a copy of every training row with its text from ``translated`` (same row
    order, as both come from one table) and the id ``<clip>#en``."""
    out = {key: list(values) for key, values in cols.items()}
    for i, split in enumerate(cols["split"]):
        if split == "train":
            copy = {key: values[i] for key, values in cols.items()}
            copy.update(id=f"{cols['id'][i]}#en", text=translated["text"][i])
            for key, value in copy.items():
                out[key].append(value)
    return out


def import_text_only(source: Path, out: Path, *, name: str) -> tuple[Path, list[str]]:
    release = TEXT_RELEASES[name]
    labels = _need(source.joinpath(*release.table))
    task, (lo, hi), note = release.task, release.label_range, release.note
    cols = read_labels(labels, text_column=release.text_column)
    report_extra = []
    if task == "sims":  # CH-SIMS's official split is by clip, not by video: report, don't refuse
        shared = _videos_in_several_splits(cols, _video_of(labels))
        note += f"; the official split is clip-level: {len(shared)} videos have clips in several splits"
        report_extra.append(f"videos with clips in several splits (official, clip-level split): {len(shared)}")
    else:
        _check_split_leakage(cols, _video_of(labels), str(labels))
    if release.train_translation_column:
        cols = _with_translated_training_rows(cols, read_labels(labels, text_column=release.train_translation_column))
    meta = DatasetMeta(
        name=name,
        task=task,
        label_min=lo,
        label_max=hi,
        alignment="none",
        language=release.language,
        source=f"{labels.relative_to(source)}",
        notes=[
            note,
            "No audio/visual features are available in this release: the A/V path is empty "
            "(GMRA injects nothing; variants differ only by adapter and objective).",
        ],
    )
    return save_dataset(cols, meta, out, where=str(labels)), _report(cols, video_disjoint=task != "sims") + report_extra


def _report(cols: dict[str, list], *, video_disjoint: bool = True) -> list[str]:
    lines = []
    counts = Counter(cols["split"])
    labels = np.asarray(cols["label"], dtype=np.float64)
    splits = np.asarray(cols["split"])
    for split in SPLITS:
        y = labels[splits == split]
        lines.append(
            f"{split}: {counts[split]} clips, label mean {y.mean():+.3f} std {y.std():.3f}, "
            f"positive {int((y > 0).sum())}, neutral {int((y == 0).sum())}, negative {int((y < 0).sum())}"
        )
    unique = len(set(cols["id"])) == len(cols["id"])
    lines.append(f"every clip id unique: {unique}" + ("; no video in two splits" if video_disjoint else ""))
    return lines


def import_release(name: str, source: str | Path, out: str | Path) -> tuple[Path, list[str]]:
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise ValueError(f"{source}: source folder not found")
    check_output_dir(out, (source,))  # before reading anything; save_dataset checks again
    if name == "mosi-clip":
        return import_mosi_clip(source, out)
    if name == "mosi-bclstm":
        return import_mosi_bclstm(source, out)
    if name in TEXT_RELEASES:
        return import_text_only(source, out, name=name)
    choices = ", ".join(["mosi-clip", "mosi-bclstm", *TEXT_RELEASES])
    raise ValueError(f"unknown import {name!r}; choose from {choices}")
