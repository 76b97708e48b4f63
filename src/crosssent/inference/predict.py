"""Scoring new clips: transcripts in, sentiment predictions out, with an exported model folder.

New clips come as ``--text`` arguments, a CSV with a ``text`` column (``id`` optional) and/or
recordings (``--media``), whose transcripts come from speech recognition
(``features/transcribe.py``). They are tokenized exactly as the model's training data was
(``preprocessing.json``). A recording also gets the audio stream its model was trained on when
that stream was built from recordings (``features/recording.py``); every other stream is left
empty, as for a clip whose streams are missing, so any model still scores them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from crosssent.atomic_files import write_csv_atomic
from crosssent.data.align import align_dataset, tokenize_transcripts
from crosssent.data.csv_files import read_csv
from crosssent.features.transcribe import ChineseScript, transcribe_files
from crosssent.model.folder import Preprocessing
from crosssent.model.modeling import CrossSentModel
from crosssent.scoring import STREAMS, model_device, predict


def read_transcripts(path: Path) -> list[tuple[str, str]]:
    """(id, text) rows of a CSV with a ``text`` column and an optional ``id`` column (row
    numbers from 1 otherwise)."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    columns, table = read_csv(path)
    if "text" not in columns:
        raise ValueError(f"{path}: no 'text' column (columns: {', '.join(columns) or 'none'})")
    rows = [(r.get("id") or str(n), r["text"] or "") for n, r in enumerate(table, start=1)]
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def check_clips(clips: list[tuple[str, str]]) -> None:
    """An empty transcript or a repeated id is an error naming the clip."""
    seen: set[str] = set()
    for clip, text in clips:
        if not text.strip():
            raise ValueError(f"clip {clip!r} has an empty transcript")
        if clip in seen:
            raise ValueError(f"clip id {clip!r} appears more than once (clips without an id are numbered from 1)")
        seen.add(clip)


def gather_clips(texts: list[str], csv_path: Path | None, *, more_to_come: bool = False) -> list[tuple[str, str]]:
    """The clips to score: ``texts`` numbered from 1, then the rows of ``csv_path``.
    ``more_to_come``: recordings will be added, so having none here is not an error (check the
    whole list again with ``check_clips`` once they are in)."""
    clips = [(str(n), t) for n, t in enumerate(texts, start=1)]
    if csv_path is not None:
        clips += read_transcripts(csv_path)
    if not clips and not more_to_come:
        raise ValueError("nothing to score: give --text, --input and/or --media")
    check_clips(clips)
    return clips


@torch.inference_mode()
def score_transcripts(
    model: CrossSentModel,
    tokenizer: PreTrainedTokenizerBase,
    prep: Preprocessing,
    texts: list[str],
    *,
    batch_size: int = 64,
) -> np.ndarray:
    """Predictions (N,) from transcripts alone, tokenized as the training data was."""
    model.eval()
    device = model_device(model)
    preds = []
    for start in range(0, len(texts), batch_size):
        enc = tokenize_transcripts(tokenizer, texts[start : start + batch_size], alignment=prep.alignment, max_len=prep.max_len)
        out = model(
            input_ids=torch.tensor(enc["input_ids"], device=device),  # (B, L)
            attention_mask=torch.tensor(enc["attention_mask"], device=device),  # (B, L)
        )
        preds.append(out.prediction.float().cpu().numpy())
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.float32)


def score_clips(
    model: CrossSentModel,
    tokenizer: PreTrainedTokenizerBase,
    prep: Preprocessing,
    texts: list[str],
    audio: list[np.ndarray | None],
    visual: list[np.ndarray | None] | None = None,
) -> np.ndarray:
    """Predictions (N,) from transcripts and, where a clip has them, its audio and visual streams
    (computed from its recording as the training data's were: ``features.recording``), prepared
    by the same alignment code as training data. A missing stream scores as in training data."""
    given = {"audio": audio, "visual": visual or [None] * len(texts)}
    if not any(x is not None for stream in given.values() for x in stream):
        return score_transcripts(model, tokenizer, prep, texts)
    from datasets import Dataset

    columns: dict[str, list] = {
        "id": [str(n) for n in range(len(texts))],
        "text": texts,
        "label": [0.0] * len(texts),
        "split": ["test"] * len(texts),
    }
    for modality, frames in given.items():
        if getattr(prep, f"{modality}_dim"):
            columns[modality] = [f.tolist() if f is not None else [] for f in frames]
            columns[f"{modality}_length"] = [len(f) if f is not None else 0 for f in frames]
    aligned = align_dataset(Dataset.from_dict(columns), prep.as_meta(), tokenizer, max_len=prep.max_len, cache_root=None)
    return predict(model, aligned)[2]


def polarity(prediction: float) -> str:
    return "positive" if prediction > 0 else "negative" if prediction < 0 else "neutral"


def score_folder(
    model_dir: Path,
    clips: list[tuple[str, str]],
    audio: list[np.ndarray | None],
    visual: list[np.ndarray | None] | None = None,
    *,
    runtime: str = "torch",
) -> tuple[Preprocessing, np.ndarray]:
    """Load an exported model (``runtime``: torch, or its ONNX file: onnx / int8) and score
    ``clips``, with an audio (and visual) stream or None per clip; returns its preprocessing and
    (N,) predictions."""
    from crosssent.model.onnx_runtime import load_runtime

    model, tokenizer, prep = load_runtime(model_dir, runtime)
    return prep, score_clips(model, tokenizer, prep, [text for _, text in clips], audio, visual)


def predict_folder(model_dir: Path, clips: list[tuple[str, str]], *, runtime: str = "torch") -> tuple[Preprocessing, np.ndarray]:
    """``score_folder`` of transcripts alone."""
    return score_folder(model_dir, clips, [None] * len(clips), runtime=runtime)


def built_from_recordings(prep: Preprocessing) -> list[str]:
    """The streams of a model that an extractor here computes from a recording."""
    return [m for m in STREAMS if getattr(prep, f"{m}_dim") and getattr(prep, f"{m}_extractor")]


def read_recordings(
    paths: list[Path],
    prep: Preprocessing,
    *,
    speech_model: str,
    language: str | None,
    chinese_script: ChineseScript,
    report: Callable[[str], None],
) -> tuple[list[tuple[str, str]], list[np.ndarray | None], list[np.ndarray | None]]:
    """(id, transcript) of each recording and its audio and visual streams: computed by the
    model's own extractors where it was trained on streams built from recordings, else None."""
    if not paths:
        return [], [], []
    if not built_from_recordings(prep):
        found = transcribe_files(paths, model=speech_model, language=language, chinese_script=chinese_script, report=report)
        return [(t.clip, t.text) for t in found], [None] * len(found), [None] * len(found)
    from crosssent.features.recording import RecordingReader

    reader = RecordingReader.for_model(prep, speech_model=speech_model, language=language, chinese_script=chinese_script)
    clips, audio, visual = [], [], []
    described = " and ".join(f"{getattr(prep, f'{m}_extractor')} {m}" for m in built_from_recordings(prep))
    for n, path in enumerate(paths, start=1):
        heard = reader(path)
        clips.append((heard.clip, heard.text))
        audio.append(heard.audio)
        visual.append(heard.visual)
        missing = f"; no visual stream: {heard.visual_missing}" if heard.visual_missing else ""
        report(
            f"transcribed and described {n}/{len(paths)}: {path} ({heard.duration_s:.1f} s, {heard.language}, "
            f"{described}{missing})"
        )
    return clips, audio, visual


def format_scores(clips: list[tuple[str, str]], preds: np.ndarray, prep: Preprocessing) -> str:
    """A plain-text table (id, prediction, polarity, start of the transcript) and the label range."""
    lines = [f"{'id':<12}{'prediction':>11}  {'polarity':<9} text"]
    for (clip, text), p in zip(clips, preds):
        lines.append(f"{clip:<12}{p:>11.3f}  {polarity(p):<9} {text[:60]}")
    lines.append(f"(trained on {prep.trained_on}, whose labels range {prep.label_min:g} to {prep.label_max:g})")
    return "\n".join(lines)


def write_scores(path: Path, clips: list[tuple[str, str]], preds: np.ndarray) -> None:
    write_csv_atomic(
        path,
        ["id", "prediction", "polarity", "text"],
        ((clip, f"{p:.6g}", polarity(p), text) for (clip, text), p in zip(clips, preds)),
    )


def unused_streams_note(prep: Preprocessing, *, given: tuple[str, ...] = (), from_recordings: bool = False) -> str | None:
    """A one-line note on the streams the model reads beside the text: which were computed from
    the recordings here (``given``), and which are left empty, grouped by why."""
    computed = [f"{m} ({getattr(prep, f'{m}_extractor')})" for m in STREAMS if m in given]
    said = f"{' and '.join(computed)} computed from the recordings; " if computed else ""
    why: dict[str, list[str]] = {}
    for m in STREAMS:
        if getattr(prep, f"{m}_dim") and m not in given:
            reason = (
                "no extractor here reproduces the features it was trained on"
                if not getattr(prep, f"{m}_extractor")
                else "the recordings gave none (see above)"
                if from_recordings
                else "typed transcripts have no recording"
            )
            why.setdefault(reason, []).append(f"{m} ({getattr(prep, f'{m}_dim')} features)")
    if not why:
        return f"note: {said.rstrip('; ')}" if said else None
    empty = "; ".join(f"{' and '.join(streams)} ({reason})" for reason, streams in why.items())
    return f"note: {said}this model also reads {empty}; left empty, as for clips whose streams are missing"
