"""Text -> tokens, audio/visual -> the token timeline (docs/method.md, "Token-level alignment").

- ``word``: every sub-word takes the A/V frame of the word it came from (``word_ids()``);
  special tokens and padding take zeros with mask 0.
- ``unaligned``: each stream is resampled (linear interpolation over time) to the number of
  content tokens and laid out as ``[CLS] + content + padding``; special tokens get mask 0.
- ``clip``: one vector per clip, kept as a length-1 sequence (no resampling).
- ``none``: no audio/visual columns at all.

The result is cached on disk per (dataset, tokenizer, max_len) and reused: the cache key hashes
the dataset's Arrow fingerprint, its metadata, the full tokenizer definition and ``max_len``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from datasets import Array2D, Dataset, Features, Sequence, Value, load_from_disk
from transformers import PreTrainedTokenizerBase

from crosssent.atomic_files import temp_dir_beside
from crosssent.data.dataset import Alignment, DatasetMeta

ALIGN_VERSION = 1
CHUNK = 512


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """Hash of the full tokenizer definition, minus the truncation/padding state that a fast
    tokenizer keeps from its last call (it does not change how text is split)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        text = repr(sorted(tokenizer.get_vocab().items()))
    else:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        text = json.dumps(spec, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resample(frames: np.ndarray, n: int) -> np.ndarray:
    """(T, d) -> (n, d) by linear interpolation over time; T = 1 repeats the frame."""
    t = frames.shape[0]
    if t == n:
        return frames
    pos = np.linspace(0.0, t - 1.0, n)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo)[:, None].astype(frames.dtype)
    return frames[lo] * (1 - w) + frames[hi] * w


def _place(
    meta: DatasetMeta,
    modality: str,
    clip: str,
    frames: list,
    word_ids: list[int | None],
    n_words: int,
    max_len: int,
    dim: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One clip's stream on the token timeline: (L or 1, dim) values and (L or 1,) mask."""
    stream = np.asarray(frames, dtype=np.float32).reshape(-1, dim)
    if meta.alignment == "clip":
        out = np.zeros((1, dim), np.float32)
        if len(stream):
            out[0] = stream.mean(axis=0)  # a "clip-level" table with several rows is averaged
        return out, np.array([len(stream) > 0], dtype=np.int8)
    values = np.zeros((max_len, dim), np.float32)
    mask = np.zeros(max_len, np.int8)
    if not len(stream):
        return values, mask
    content = [i for i, w in enumerate(word_ids) if w is not None]
    if meta.alignment == "word":
        if len(stream) != n_words:
            raise ValueError(f"clip {clip!r}: {modality} has {len(stream)} word-aligned frames for {n_words} words")
        values[content] = stream[[int(word_ids[pos]) for pos in content]]  # type: ignore[arg-type]
        mask[content] = 1
    else:  # unaligned
        if content:
            values[content] = resample(stream, len(content))
            mask[content] = 1
    return values, mask


def tokenize_transcripts(tokenizer: PreTrainedTokenizerBase, texts: list[str], *, alignment: Alignment, max_len: int):
    """Token ids and masks padded to ``max_len``. Word-aligned data is split on whitespace first,
    so that every token knows its word (``word_ids``); the same call serves training data and
    new transcripts (``crosssent predict``)."""
    if alignment == "word":
        words = [t.split() for t in texts]
        return tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_len, padding="max_length")
    return tokenizer(texts, truncation=True, max_length=max_len, padding="max_length")


def _align_chunk(rows: dict[str, list], meta: DatasetMeta, tokenizer, max_len: int) -> dict[str, list]:
    words = [t.split() for t in rows["text"]]
    enc = tokenize_transcripts(tokenizer, rows["text"], alignment=meta.alignment, max_len=max_len)
    out: dict[str, list] = {
        "id": rows["id"],
        "split": rows["split"],
        "label": rows["label"],
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
    }
    for modality, dim in (("audio", meta.audio_dim), ("visual", meta.visual_dim)):
        if not dim:
            continue
        placed = [
            _place(meta, modality, clip, frames, enc.word_ids(i), len(words[i]), max_len, dim)
            for i, (clip, frames) in enumerate(zip(rows["id"], rows[modality]))
        ]
        out[modality] = [p[0] for p in placed]
        out[f"{modality}_mask"] = [p[1] for p in placed]
    return out


def _aligned_features(meta: DatasetMeta, max_len: int) -> Features:
    cols = {
        "id": Value("string"),
        "split": Value("string"),
        "label": Value("float32"),
        "input_ids": Sequence(Value("int32"), length=max_len),
        "attention_mask": Sequence(Value("int8"), length=max_len),
    }
    frames = 1 if meta.alignment == "clip" else max_len
    for modality, dim in (("audio", meta.audio_dim), ("visual", meta.visual_dim)):
        if dim:
            cols[modality] = Array2D(shape=(frames, dim), dtype="float32")
            cols[f"{modality}_mask"] = Sequence(Value("int8"), length=frames)
    return Features(cols)


def default_cache_root(data_dir: Path) -> Path:
    """``DATA_DIR/.cache`` when writable (a read-only dataset caches under ~/.cache)."""
    local = data_dir / ".cache"
    if os.access(data_dir, os.W_OK):
        return local
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "crosssent" / data_dir.resolve().name


def align_dataset(
    table: Dataset,
    meta: DatasetMeta,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_len: int,
    cache_root: Path | None,
) -> Dataset:
    """The aligned table (torch format); built once per key and then loaded from the cache."""
    key = hashlib.sha256(
        "|".join(
            [
                str(ALIGN_VERSION),
                table._fingerprint,
                meta.model_dump_json(),
                tokenizer_fingerprint(tokenizer),
                str(max_len),
            ]
        ).encode()
    ).hexdigest()[:20]
    cached = cache_root / f"aligned-{key}" if cache_root is not None else None
    if cached is not None and (cached / "dataset_info.json").is_file():
        return load_from_disk(str(cached)).with_format("torch")
    columns: dict[str, list] = {}
    for start in range(0, len(table), CHUNK):
        chunk = _align_chunk(table[start : start + CHUNK], meta, tokenizer, max_len)
        for name, values in chunk.items():
            columns.setdefault(name, []).extend(values)
    aligned = Dataset.from_dict(columns, features=_aligned_features(meta, max_len))
    if cached is not None:
        # Not ``atomic_dir``: the cache is keyed by content, so when another process got there
        # first its folder is already right and stays (replacing it could pull it from under a reader).
        tmp = temp_dir_beside(cached)
        try:
            aligned.save_to_disk(str(tmp))
            os.replace(tmp, cached)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not cached.exists():
                raise
        aligned = load_from_disk(str(cached))
    return aligned.with_format("torch")
