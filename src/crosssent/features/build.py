"""Recordings + a label table -> a canonical dataset with real audio features:
``crosssent data build`` and ``crosssent data import ravdess``.

Recordings: a folder of ``<id>.<ext>`` files, or the MMSA raw layout ``Raw/VIDEO_ID/CLIP_ID.mp4``
(clip id ``VIDEO_ID_CLIP_ID``), anything FFmpeg reads. Labels: a CSV in MMSA's ``label.csv``
layout (``video_id, clip_id, text, label, mode``) or with the columns named by the options.
Text: the table's, else recognised from the recording (Whisper base).

Each clip's stream is computed once and kept in a per-clip cache beside the output
(``OUT.build-cache/``), so an interrupted build resumes where it stopped and a rebuild with the
same extractor costs nothing. A clip whose recording is missing, unreadable or silent is kept
with its audio stream missing and named in the report; nothing half-written is left at ``OUT``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosssent.data.csv_files import read_csv
from crosssent.data.dataset import DatasetMeta, check_output_dir, save_dataset
from crosssent.data.sources.mmsa import LABEL_RANGE
from crosssent.features.audio import AudioExtractor
from crosssent.features.media import MEDIA_SUFFIXES, is_silent, read_audio
from crosssent.features.pooling import POOLED, pool

RAVDESS_SPLIT = {"train": range(1, 15), "valid": range(15, 17), "test": range(17, 21)}  # by actor


@dataclass(frozen=True)
class Clip:
    id: str
    text: str
    label: float
    split: str
    media: Path | None


def find_media(media_dir: Path) -> dict[str, Path]:
    """clip id -> recording: flat ``<id>.<ext>`` files and MMSA's ``Raw/VIDEO/CLIP.ext``."""
    if not media_dir.is_dir():
        raise ValueError(f"{media_dir}: no such folder of recordings")
    found: dict[str, Path] = {}
    for path in sorted(media_dir.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in MEDIA_SUFFIXES:
            continue
        relative = path.relative_to(media_dir)
        clip = path.stem if len(relative.parts) == 1 else f"{relative.parts[-2]}_{path.stem}"
        if clip in found:
            raise ValueError(f"{found[clip]} and {path} would both be clip {clip!r}; rename one")
        found[clip] = path
    if not found:
        raise ValueError(f"{media_dir}: holds no recording ({', '.join(MEDIA_SUFFIXES)})")
    return found


def read_label_table(
    path: Path, media: dict[str, Path], *, id_column: str | None, label_column: str, split_column: str,
    text_column: str,
) -> list[Clip]:
    """The clips of a label table: MMSA's layout when ``id_column`` is None."""
    mmsa = id_column is None
    needed = ["video_id", "clip_id", label_column, split_column] if mmsa else [id_column or "", label_column, split_column]
    header, rows = read_csv(path, required=needed)
    clips = []
    for line, row in enumerate(rows, start=2):
        clip = f"{row['video_id']}_{row['clip_id']}" if mmsa else row[id_column or ""]
        try:
            label = float(row[label_column])
        except ValueError:
            raise ValueError(f"{path}: line {line} (clip {clip!r}) has a non-numeric {label_column}") from None
        text = row.get(text_column, "").strip() if text_column in header else ""
        clips.append(Clip(clip, text, label, row[split_column].strip(), media.get(clip)))
    return clips


def _progress(done: int, total: int, started: float, report: Callable[[str], None]) -> None:
    rate = done / max(time.monotonic() - started, 1e-9)
    left = (total - done) / rate if rate else float("inf")
    report(f"  {done}/{total} clips, {rate:.1f} clips/s, about {left:.0f} s left")


def extract_streams(
    clips: list[Clip], *, audio: str, alignment: str, cache: Path, transcriber_needed: bool,
    report: Callable[[str], None],
) -> tuple[dict[str, np.ndarray], dict[str, str], list[str], str]:
    """clip id -> its audio stream (cached per clip), recognised texts, problems, extractor version."""
    from crosssent.features.audio import audio_extractor

    extractor = audio_extractor(audio)
    version = extractor.info.version
    cache = cache / f"{audio}-{alignment}"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "extractor.txt").write_text(version + "\n", encoding="utf-8")
    transcriber = None
    if transcriber_needed or alignment == "word":
        from crosssent.features.transcribe import Transcriber

        transcriber = Transcriber()
    streams: dict[str, np.ndarray] = {}
    texts: dict[str, str] = {}
    problems: list[str] = []
    started, total = time.monotonic(), len(clips)
    for n, clip in enumerate(clips, start=1):
        cached = cache / f"{clip.id}.npz"
        if cached.is_file():
            with np.load(cached, allow_pickle=False) as saved:
                streams[clip.id] = saved["stream"]
                if "text" in saved.files:
                    texts[clip.id] = str(saved["text"])
        elif clip.media is None:
            problems.append(f"clip {clip.id}: no recording found; kept without audio")
        else:
            try:
                samples = read_audio(clip.media)
                if is_silent(samples):
                    raise ValueError(f"{clip.media}: silent")
                spans = None
                extra: dict[str, np.ndarray] = {}
                if transcriber is not None and (not clip.text or alignment == "word"):
                    text, _, words = transcriber.recognise(samples, where=clip.media, word_times=alignment == "word")
                    extra["text"] = np.array(text)
                    texts[clip.id] = text
                    spans = word_spans(clip.text or text, words, len(samples) / 16_000)
                stream = clip_stream(samples, extractor, alignment, spans, where=clip.media)
                tmp = cached.with_name(f".{cached.name}.tmp.npz")
                np.savez(tmp, stream=stream, **extra)  # type: ignore[arg-type]
                tmp.replace(cached)
                streams[clip.id] = stream
            except ValueError as err:
                problems.append(f"clip {clip.id}: {err}; kept without audio")
        if n % 50 == 0 or n == total:
            _progress(n, total, started, report)
    return streams, texts, problems, version


def clip_stream(
    samples: np.ndarray, extractor: AudioExtractor, alignment: str, spans: list[tuple[float, float]] | None,
    *, where: Path,
) -> np.ndarray:
    """One recording's audio stream, as a dataset built with ``extractor`` and ``alignment``
    stores it (training data and new recordings both go through here)."""
    frames = extractor(samples)
    if len(frames) == 0:
        raise ValueError(f"{where}: too short for any {extractor.info.name} frame")
    return pool(frames, extractor.info.frames_per_second, alignment, spans)


def word_spans(text: str, words: list[tuple[str, float, float]], duration: float) -> list[tuple[float, float]]:
    """One time span per whitespace word of ``text``: the recogniser's word times when it heard
    as many words, else the recognised speech span (or the whole clip) shared out in proportion
    to each word's length."""
    wanted = text.split()
    if len(words) == len(wanted):
        return [(start, end) for _, start, end in words]
    start, end = (words[0][1], words[-1][2]) if words else (0.0, duration)
    weights = np.array([len(w) + 1 for w in wanted], dtype=np.float64)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


def build_dataset(
    clips: list[Clip], out: Path, *, name: str, task: str, audio: str, alignment: str, source: str,
    inputs: tuple[Path, ...], report: Callable[[str], None] = print,
) -> tuple[Path, list[str]]:
    """Extract, pool and write the canonical dataset (atomically); the report's lines."""
    if task not in LABEL_RANGE:
        raise ValueError(f"--task must be one of {sorted(LABEL_RANGE)}, got {task!r}")
    if alignment not in POOLED:
        raise ValueError(f"--alignment must be one of {', '.join(POOLED)}, got {alignment!r}")
    resolved = check_output_dir(out, inputs)
    cols: dict[str, list] = {"id": [c.id for c in clips], "label": [c.label for c in clips],
                             "split": [c.split for c in clips]}
    lines: list[str] = []
    version = ""
    meta_extra: dict[str, object] = {}
    if audio != "none":
        cache = resolved.with_name(resolved.name + ".build-cache")
        need_text = any(not c.text for c in clips)
        streams, texts, problems, version = extract_streams(
            clips, audio=audio, alignment=alignment, cache=cache, transcriber_needed=need_text, report=report
        )
        widths = {s.shape[1] for s in streams.values()}
        if not widths:
            raise ValueError(f"{source}: no clip gave {audio} features ({problems[0] if problems else 'no clips'})")
        cols["text"] = [c.text or texts.get(c.id, "") for c in clips]
        cols["audio"] = [streams[c.id].tolist() if c.id in streams else [] for c in clips]
        meta_extra = {"audio_dim": widths.pop(), "audio_features": f"{audio}: {version}; {alignment} pooling",
                      "audio_extractor": audio, "audio_extractor_version": version}
        lines += problems
        lines.append(f"audio: {len(streams)} of {len(clips)} clips with {audio} features ({alignment})")
    else:
        cols["text"] = [c.text for c in clips]
    missing_text = [c for c, t in zip(cols["id"], cols["text"]) if not t]
    if missing_text:
        raise ValueError(f"{source}: clip {missing_text[0]!r} has no transcript and none could be recognised")
    lo, hi = LABEL_RANGE[task]
    meta = DatasetMeta(
        name=name, task=task, label_min=lo, label_max=hi,  # type: ignore[arg-type]
        alignment=alignment if audio != "none" else "none",  # type: ignore[arg-type]
        source=source, notes=lines, **meta_extra,  # type: ignore[arg-type]
    )
    return save_dataset(cols, meta, resolved, where=source, inputs=inputs), lines


def build_from_table(
    media_dir: Path, labels: Path, out: Path, *, audio: str, alignment: str, task: str, name: str,
    id_column: str | None, label_column: str, split_column: str, text_column: str,
    report: Callable[[str], None] = print,
) -> tuple[Path, list[str]]:
    """``crosssent data build``."""
    check_output_dir(out, (media_dir, labels))
    media = find_media(media_dir)
    clips = read_label_table(labels, media, id_column=id_column, label_column=label_column,
                             split_column=split_column, text_column=text_column)
    unknown = [c.id for c in clips if c.media is None]
    report(f"{len(clips)} clips in {labels}, {len(clips) - len(unknown)} with a recording in {media_dir}")
    return build_dataset(clips, out, name=name or labels.stem, task=task, audio=audio, alignment=alignment,
                         source=f"recordings: {media_dir.name}, labels: {labels.name}", inputs=(media_dir, labels),
                         report=report)


def import_ravdess(source: Path, out: Path, *, audio: str, alignment: str = "clip",
                   report: Callable[[str], None] = print) -> tuple[Path, list[str]]:
    """RAVDESS speech, actors 1-20 (``SOURCE/ravdess``): valence in [-3, 3] as the label, the
    spoken sentence as the text, split by actor (train 1-14, valid 15-16, test 17-20)."""
    base = source / "ravdess"
    check_output_dir(out, (source,))
    media = find_media(base / "audio")
    _, rows = read_csv(base / "labels.csv", required=["id", "actor", "text", "valence"])
    split_of = {actor: split for split, actors in RAVDESS_SPLIT.items() for actor in actors}
    clips = []
    for row in rows:
        actor = int(row["actor"])
        if actor not in split_of:
            raise ValueError(f"{base / 'labels.csv'}: clip {row['id']!r} has actor {actor}, expected 1-20")
        clips.append(Clip(row["id"], row["text"], float(row["valence"]), split_of[actor], media.get(row["id"])))
    report(f"{len(clips)} RAVDESS clips, {sum(c.media is not None for c in clips)} with a recording")
    return build_dataset(clips, out, name="ravdess", task="mosi", audio=audio, alignment=alignment,
                         source="RAVDESS speech, actors 1-20, split by actor (1-14 / 15-16 / 17-20)",
                         inputs=(source,), report=report)
