"""Recordings + a label table -> a canonical dataset with real audio and visual features:
``crosssent data build`` and ``crosssent data import ravdess``.

Recordings: a folder of ``<id>.<ext>`` files, or the MMSA raw layout ``Raw/VIDEO_ID/CLIP_ID.mp4``
(clip id ``VIDEO_ID_CLIP_ID``), anything FFmpeg reads. Labels: a CSV in MMSA's ``label.csv``
layout (``video_id, clip_id, text, label, mode``) or with the columns named by the options.
Text: the table's, else recognised from the recording (Whisper base).

Each clip's streams are computed once and kept in per-clip caches beside the output
(``OUT.build-cache/EXTRACTOR-ALIGNMENT/``), so an interrupted build resumes where it stopped and
a rebuild with the same extractors costs nothing. A clip whose recording is missing, unreadable,
silent (audio) or faceless (visual) is kept with that stream missing and named in the report;
nothing half-written is left at ``OUT``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crosssent.data.csv_files import read_csv
from crosssent.data.dataset import DatasetMeta, check_output_dir, save_dataset
from crosssent.data.sources.mmsa import LABEL_RANGE
from crosssent.features.audio import AudioExtractor
from crosssent.features.media import MEDIA_SUFFIXES, SAMPLE_RATE, add_noise, is_silent, read_audio
from crosssent.features.pooling import POOLED, pool

RAVDESS_SPLIT = {"train": range(1, 15), "valid": range(15, 17), "test": range(17, 21)}  # by actor


@dataclass(frozen=True)
class Clip:
    id: str
    text: str
    label: float
    split: str
    media: Path | None


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]{0,120}$")


def cache_name(clip: str) -> str:
    """The cache file of a clip: its id where that is a plain file name, else a hash of it (an
    id from a label table must never pick a path: ``../x`` stays inside the cache)."""
    if _SAFE_NAME.match(clip):
        return f"{clip}.npz"
    return f"id-{hashlib.sha256(clip.encode('utf-8')).hexdigest()[:32]}.npz"


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
    path: Path,
    media: dict[str, Path],
    *,
    id_column: str | None,
    label_column: str,
    split_column: str,
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


@dataclass(frozen=True)
class Stream:
    """One stream a build computes: its modality, extractor and per-clip cache folder."""

    modality: str  # "audio" or "visual"
    extractor: str
    cache: Path


def stream_extractor_version(name: str) -> str:
    """The version of audio or visual extractor ``name`` (see ``cache_folder``)."""
    from crosssent.features import audio, visual

    return (visual if name in visual.VISUAL_EXTRACTORS else audio).extractor_version(name)


class _Computer:
    """Computes one clip's streams into their caches; the extractors (and the speech model, when
    the transcript or word times are needed) are loaded on first use, once per process."""

    def __init__(
        self,
        streams: tuple[Stream, ...],
        alignment: str,
        need_transcriber: bool,
        language: str = "en",
        noise_snr: float | None = None,
    ) -> None:
        self.streams, self.alignment, self.need_transcriber = streams, alignment, need_transcriber
        self.language = language  # of the given transcripts, for their forced alignment
        self.noise_snr = noise_snr  # white noise added to every waveform first (dB SNR), or None
        self.extractors: dict[str, Any] = {}
        self.transcriber: Any = None  # features.transcribe.Transcriber, loaded when needed

    def _load(self) -> None:
        from crosssent.features.audio import audio_extractor
        from crosssent.features.visual import visual_extractor

        for stream in self.streams:
            load = audio_extractor if stream.modality == "audio" else visual_extractor
            self.extractors[stream.modality] = load(stream.extractor)
        if self.need_transcriber or self.alignment == "word":
            from crosssent.features.transcribe import Transcriber

            self.transcriber = Transcriber()

    def __call__(self, clip: Clip) -> list[str]:
        """The problems that kept a stream of ``clip`` out of its cache (none: all are in now)."""
        todo = [s for s in self.streams if not (s.cache / cache_name(clip.id)).is_file()]
        if not todo:
            return []
        if clip.media is None:
            return [f"clip {clip.id}: no recording found; kept without {s.modality}" for s in todo]
        if not self.extractors:
            self._load()
        need_words = self.transcriber is not None and (not clip.text or self.alignment == "word")
        samples, heard, spans = None, "", None
        extra: dict[str, np.ndarray] = {}
        if need_words or any(s.modality == "audio" for s in todo):
            try:
                samples = read_audio(clip.media)
                if is_silent(samples):
                    raise ValueError(f"{clip.media}: silent")
            except ValueError as err:
                samples, heard = None, str(err)
        if samples is not None and self.noise_snr is not None:
            samples = add_noise(samples, self.noise_snr, seed=noise_seed(clip.id, self.noise_snr))
        if samples is not None and need_words:
            if clip.text:  # a given transcript is timed by forced alignment, not recognised again
                said = clip.text
                words = self.transcriber.align(samples, said, where=clip.media, language=self.language)
            else:
                said, _, words = self.transcriber.recognise(samples, where=clip.media, word_times=self.alignment == "word")
                extra["text"] = np.array(said)
            spans = word_spans(said, words, len(samples) / SAMPLE_RATE)
        problems = []
        for stream in todo:
            extractor = self.extractors[stream.modality]
            try:
                if stream.modality == "audio":
                    if samples is None:
                        raise ValueError(heard)
                    data = clip_stream(samples, extractor, self.alignment, spans, where=clip.media)
                else:
                    if self.alignment == "word" and spans is None:
                        raise ValueError(f"{heard}, so its words cannot be timed")
                    data = visual_stream(clip.media, extractor, self.alignment, spans)
            except ValueError as err:
                problems.append(f"clip {clip.id}: {err}; kept without {stream.modality}")
                continue
            cached = stream.cache / cache_name(clip.id)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp.npz")
            np.savez(tmp, stream=data, **extra)  # type: ignore[arg-type]
            tmp.replace(cached)
        return problems


_WORKER: _Computer | None = None  # one per worker process


def noise_seed(clip: str, snr_db: float) -> int:
    """The seed of a clip's waveform noise: fixed by its id and the SNR, in any process."""
    return int.from_bytes(hashlib.sha256(f"{clip}|{snr_db:g}".encode()).digest()[:8], "little")


def _start_worker(
    streams: tuple[Stream, ...], alignment: str, need_transcriber: bool, language: str, noise_snr: float | None
) -> None:
    global _WORKER
    import torch  # already loaded with this module's imports

    torch.set_num_threads(1)  # one core per worker process, as the CTranslate2 models are given
    _WORKER = _Computer(streams, alignment, need_transcriber, language, noise_snr)


def _work(clips: list[Clip]) -> list[str]:
    assert _WORKER is not None
    return [problem for clip in clips for problem in _WORKER(clip)]


def cache_folder(cache_root: Path, extractor: str, alignment: str, noise_snr: float | None = None) -> Path:
    """Where a build keeps one extractor's per-clip streams (``-snrDB`` for streams of noisy
    waveforms); it holds ``extractor.txt``, the version that made them, and is refused when
    another version would add to it."""
    folder = cache_root / (f"{extractor}-{alignment}" + ("" if noise_snr is None else f"-snr{noise_snr:g}"))
    version = stream_extractor_version(extractor)
    stamp = folder / "extractor.txt"
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() != version:
        raise ValueError(
            f"{folder}: made by {stamp.read_text(encoding='utf-8').strip()!r}, not by this "
            f"installation's {version!r}; move it away to build again"
        )
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(version + "\n", encoding="utf-8")
    return folder


def fill_cache(
    clips: list[Clip],
    *,
    streams: tuple[Stream, ...],
    alignment: str,
    need_transcriber: bool,
    workers: int,
    report: Callable[[str], None],
    language: str = "en",
    noise_snr: float | None = None,
) -> list[str]:
    """Compute every stream of every clip not in its cache yet (in ``workers`` processes); the problems."""
    pending = [c for c in clips if any(not (s.cache / cache_name(c.id)).is_file() for s in streams)]
    if len(pending) < len(clips):
        report(f"{len(clips) - len(pending)} of {len(clips)} clips already in {', '.join(str(s.cache) for s in streams)}")
    started, done, problems = time.monotonic(), 0, []
    if workers <= 1:
        compute = _Computer(streams, alignment, need_transcriber, language, noise_snr)
        for clip in pending:
            problems += compute(clip)
            done += 1
            if done % 50 == 0 or done == len(pending):
                _progress(done, len(pending), started, report)
        return problems
    chunks = [pending[i : i + 16] for i in range(0, len(pending), 16)]
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked model state
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(streams, alignment, need_transcriber, language, noise_snr),
    ) as pool:
        for chunk, found in zip(chunks, pool.map(_work, chunks)):
            problems += found
            done += len(chunk)
            _progress(done, len(pending), started, report)
    return problems


def read_cache(clips: list[Clip], cache: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """clip id -> stream, and the recognised texts, of every clip in the cache."""
    streams: dict[str, np.ndarray] = {}
    texts: dict[str, str] = {}
    for clip in clips:
        cached = cache / cache_name(clip.id)
        if cached.is_file():
            with np.load(cached, allow_pickle=False) as saved:
                streams[clip.id] = saved["stream"]
                if "text" in saved.files:
                    texts[clip.id] = str(saved["text"])
    return streams, texts


def merge_caches(sources: list[Path], into: Path) -> tuple[Path, list[str]]:
    """``crosssent data merge``: the per-clip streams of several shards' caches (one extractor
    version, checked) copied into one cache, from which ``data build`` then writes the dataset."""
    versions = {}
    for source in sources:
        stamp = source / "extractor.txt"
        if not stamp.is_file():
            raise ValueError(f"{source}: not a build cache (extractor.txt is missing)")
        versions[source] = stamp.read_text(encoding="utf-8").strip()
    if len(set(versions.values())) != 1:
        raise ValueError(f"the caches were made by different extractors: {sorted(set(versions.values()))}")
    version = next(iter(versions.values()))
    into.mkdir(parents=True, exist_ok=True)
    stamp = into / "extractor.txt"
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() != version:
        raise ValueError(f"{into}: made by another extractor version than the shards")
    copied = 0
    for source in sources:
        for part in sorted(source.glob("*.npz")):
            if not (into / part.name).is_file():
                shutil.copyfile(part, into / part.name)
                copied += 1
    stamp.write_text(version + "\n", encoding="utf-8")
    return into, [f"{copied} clip streams copied from {len(sources)} cache(s); {len(list(into.glob('*.npz')))} in all"]


def clip_stream(
    samples: np.ndarray,
    extractor: AudioExtractor,
    alignment: str,
    spans: list[tuple[float, float]] | None,
    *,
    where: Path,
) -> np.ndarray:
    """One recording's audio stream, as a dataset built with ``extractor`` and ``alignment``
    stores it (training data and new recordings both go through here)."""
    frames = extractor(samples)
    if len(frames) == 0:
        raise ValueError(f"{where}: too short for any {extractor.info.name} frame")
    return pool(frames, extractor.info.frames_per_second, alignment, spans)


def visual_stream(path: Path, extractor: Any, alignment: str, spans: list[tuple[float, float]] | None) -> np.ndarray:
    """One recording's visual stream (``features.visual``): the frames with a face, pooled as
    ``clip_stream`` pools audio; a recording without any face has none."""
    frames, has_face = extractor(path)
    if len(frames) == 0:
        raise ValueError(f"{path}: no video frame")
    if not has_face.any():
        raise ValueError(f"{path}: no face in any of its {len(frames)} sampled frames")
    return pool(frames, extractor.info.frames_per_second, alignment, spans, valid=has_face)


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
    clips: list[Clip],
    out: Path,
    *,
    name: str,
    task: str,
    audio: str,
    alignment: str,
    source: str,
    inputs: tuple[Path, ...],
    visual: str = "none",
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    noise_snr: float | None = None,
    splits: tuple[str, ...] = (),
    report: Callable[[str], None] = print,
) -> tuple[Path, list[str]]:
    """Extract, pool and write the canonical dataset (atomically); the report's lines. With
    ``shard`` (i, n), only every n-th clip from the i-th (1-based) is computed into the caches
    and no dataset is written: the path returned is the (first stream's) cache. With
    ``noise_snr``, white noise at that SNR (dB) is added to every waveform before anything is
    extracted from it (a test of robustness to real-world noise; the dataset says so in its
    metadata). ``splits``: streams are computed for the clips of those splits only (all when
    empty); every other clip is kept, without streams, so the dataset keeps its three splits."""
    if splits:
        unknown = sorted(set(splits) - {c.split for c in clips})
        if unknown:
            raise ValueError(f"{source}: --split {unknown[0]}: no clip is in that split")
    chosen = [c for c in clips if not splits or c.split in splits]
    if noise_snr is not None and audio == "none":
        raise ValueError("--noise-snr adds noise to the waveform before audio extraction: it needs --audio")
    if task not in LABEL_RANGE:
        raise ValueError(f"--task must be one of {sorted(LABEL_RANGE)}, got {task!r}")
    if alignment not in POOLED:
        raise ValueError(f"--alignment must be one of {', '.join(POOLED)}, got {alignment!r}")
    if shard is not None and not 1 <= shard[0] <= shard[1]:
        raise ValueError(f"--shard {shard[0]}/{shard[1]}: expected i/n with 1 <= i <= n")
    if shard is not None and audio == "none" and visual == "none":
        raise ValueError("--shard spreads the feature extraction: it needs --audio or --visual")
    resolved = check_output_dir(out, inputs)
    cache_root = resolved.with_name(resolved.name + ".build-cache")
    streams = tuple(
        Stream(modality, extractor, cache_folder(cache_root, extractor, alignment, noise_snr))
        for modality, extractor in (("audio", audio), ("visual", visual))
        if extractor != "none"
    )
    cols: dict[str, list] = {
        "id": [c.id for c in clips],
        "label": [c.label for c in clips],
        "split": [c.split for c in clips],
        "text": [c.text for c in clips],
    }
    lines: list[str] = []
    meta_extra: dict[str, object] = {}
    if streams:
        problems = fill_cache(
            chosen if shard is None else chosen[shard[0] - 1 :: shard[1]],
            streams=streams,
            alignment=alignment,
            need_transcriber=any(not c.text for c in chosen),
            workers=workers,
            report=report,
            language="zh" if task == "sims" else "en",
            noise_snr=noise_snr,
        )
        if shard is not None:
            return streams[0].cache, problems + [
                f"shard {shard[0]}/{shard[1]}: streams cached in {', '.join(s.cache.name for s in streams)}; merge the "
                "shards' caches (crosssent data merge, once per stream) and build again without --shard"
            ]
        lines += problems
    for stream in streams:
        found, texts = read_cache(chosen, stream.cache)
        widths = {f.shape[1] for f in found.values()}
        if not widths:
            raise ValueError(f"{source}: no clip gave {stream.extractor} features ({problems[0] if problems else 'no clips'})")
        version = (stream.cache / "extractor.txt").read_text(encoding="utf-8").strip()
        cols["text"] = [t or texts.get(c, "") for c, t in zip(cols["id"], cols["text"])]
        cols[stream.modality] = [found[c.id].tolist() if c.id in found else [] for c in clips]
        m = stream.modality
        meta_extra |= {
            f"{m}_dim": widths.pop(),
            f"{m}_features": f"{stream.extractor}: {version}; {alignment} pooling",
            f"{m}_extractor": stream.extractor,
            f"{m}_extractor_version": version,
        }
        lines.append(f"{m}: {len(found)} of {len(clips)} clips with {stream.extractor} features ({alignment})")
    if len(chosen) < len(clips):
        left = len(clips) - len(chosen)
        lines.append(f"streams computed for the {', '.join(splits)} split(s) only: {left} other clips kept without them")
    if noise_snr is not None:
        meta_extra["audio_noise_snr_db"] = noise_snr
        noted = f"white noise at {noise_snr:g} dB SNR added to the waveform"
        meta_extra["audio_features"] = f"{meta_extra['audio_features']}; {noted}"
        lines.append(f"white noise at {noise_snr:g} dB SNR added to every waveform before extraction")
    computed = {c.id for c in chosen}  # a clip outside --split keeps the table's text, if any
    missing_text = [c for c, t in zip(cols["id"], cols["text"]) if not t and c in computed]
    if missing_text:
        raise ValueError(f"{source}: clip {missing_text[0]!r} has no transcript and none could be recognised")
    lo, hi = LABEL_RANGE[task]
    meta = DatasetMeta(
        name=name,
        task=task,  # type: ignore[arg-type]
        label_min=lo,
        label_max=hi,
        alignment=alignment if streams else "none",  # type: ignore[arg-type]
        source=source,
        notes=lines,
        **meta_extra,  # type: ignore[arg-type]
    )
    return save_dataset(cols, meta, resolved, where=source, inputs=inputs), lines


def build_from_table(
    media_dir: Path,
    labels: Path,
    out: Path,
    *,
    audio: str,
    alignment: str,
    task: str,
    name: str,
    id_column: str | None,
    label_column: str,
    split_column: str,
    text_column: str,
    visual: str = "none",
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    noise_snr: float | None = None,
    splits: tuple[str, ...] = (),
    report: Callable[[str], None] = print,
) -> tuple[Path, list[str]]:
    """``crosssent data build``."""
    check_output_dir(out, (media_dir, labels))
    media = find_media(media_dir)
    clips = read_label_table(
        labels, media, id_column=id_column, label_column=label_column, split_column=split_column, text_column=text_column
    )
    unknown = [c.id for c in clips if c.media is None]
    report(f"{len(clips)} clips in {labels}, {len(clips) - len(unknown)} with a recording in {media_dir}")
    return build_dataset(
        clips,
        out,
        name=name or labels.stem,
        task=task,
        audio=audio,
        alignment=alignment,
        source=f"recordings: {media_dir.name}, labels: {labels.name}",
        inputs=(media_dir, labels),
        visual=visual,
        workers=workers,
        shard=shard,
        noise_snr=noise_snr,
        splits=splits,
        report=report,
    )


def import_ravdess(
    source: Path,
    out: Path,
    *,
    audio: str,
    alignment: str = "clip",
    workers: int = 1,
    noise_snr: float | None = None,
    splits: tuple[str, ...] = (),
    report: Callable[[str], None] = print,
) -> tuple[Path, list[str]]:
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
    return build_dataset(
        clips,
        out,
        name="ravdess",
        task="mosi",
        audio=audio,
        alignment=alignment,
        source="RAVDESS speech, actors 1-20, split by actor (1-14 / 15-16 / 17-20)",
        inputs=(source,),
        workers=workers,
        noise_snr=noise_snr,
        splits=splits,
        report=report,
    )
