"""A new recording as a model reads it: its transcript and, when the model was trained on audio
features computed from recordings (``crosssent data build``), the same audio stream, computed by
the same extractor with the same pooling. One decode serves both.

A model trained on other audio (a release's features, which no extractor here reproduces)
gets the transcript alone, and the answer says so.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosssent.features.transcribe import WHISPER_BASE, ChineseScript, Transcriber


@dataclass(frozen=True)
class Recording:
    clip: str  # the file name without its suffix
    path: Path
    text: str
    language: str
    duration_s: float
    audio: np.ndarray | None  # the model's audio stream for this clip; None: not computed


class RecordingReader:
    """Loads the speech model (and the model's audio extractor, if any) once; calling it with a
    file gives a ``Recording``. ``audio_extractor`` / ``version`` / ``alignment`` come from the
    model folder's ``preprocessing.json``: another version of the extractor is refused, since
    its numbers are not the ones the model learnt from."""

    def __init__(
        self, *, audio_extractor: str = "", version: str = "", alignment: str = "clip",
        speech_model: str = WHISPER_BASE, language: str | None = None,
        chinese_script: ChineseScript = ChineseScript.simplified,
    ) -> None:
        self.alignment = alignment
        # The service calls a reader from several threads; openSMILE's wrapper is not documented
        # as thread-safe, so the extractor runs one recording at a time (the transcriber does not
        # need this: CTranslate2 queues concurrent calls itself).
        self._extracting = threading.Lock()
        self.extractor = None
        if audio_extractor:
            from crosssent.features.audio import audio_extractor as load_extractor
            from crosssent.features.audio import extractor_version

            installed = extractor_version(audio_extractor)
            if version and installed != version:
                raise ValueError(f"the model's audio was computed by {audio_extractor} {version!r}, but this "
                                 f"installation has {installed!r}")
            self.extractor = load_extractor(audio_extractor)
        self.transcriber = Transcriber(model=speech_model, language=language, chinese_script=chinese_script)

    def __call__(self, path: Path) -> Recording:
        from crosssent.features.build import clip_stream, word_spans
        from crosssent.features.media import SAMPLE_RATE, read_audio

        samples = read_audio(path)
        need_words = self.extractor is not None and self.alignment == "word"
        text, language, words = self.transcriber.recognise(samples, where=path, word_times=need_words)
        audio = None
        if self.extractor is not None:
            spans = word_spans(text, words, len(samples) / SAMPLE_RATE) if need_words else None
            with self._extracting:
                audio = clip_stream(samples, self.extractor, self.alignment, spans, where=path)
        return Recording(clip=path.stem, path=path, text=text, language=language,
                         duration_s=len(samples) / SAMPLE_RATE, audio=audio)
