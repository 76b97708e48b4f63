"""A new recording as a model reads it: its transcript and, when the model was trained on streams
computed from recordings (``crosssent data build``), the same audio and visual streams, computed
by the same extractors with the same pooling. One decode of the sound serves transcript and audio.

A model trained on other streams (a release's features, which no extractor here reproduces)
gets the transcript alone, and the answer says so. A recording without a video track, or in
which no face is found, gets no visual stream; ``Recording.visual_missing`` says why.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    visual: np.ndarray | None = None  # the model's visual stream; None: not computed (see visual_missing)
    visual_missing: str = ""  # why a model that reads faces got none from this recording


def _checked(load: Any, version_of: Any, name: str, version: str, modality: str) -> Any:
    installed = version_of(name)
    if version and installed != version:
        raise ValueError(f"the model's {modality} was computed by {name} {version!r}, but this installation has {installed!r}")
    return load(name)


class RecordingReader:
    """Loads the speech model (and the model's extractors, if any) once; calling it with a file
    gives a ``Recording``. The extractors' names, versions and the alignment come from the model
    folder's ``preprocessing.json`` (``for_model``): another version of an extractor is refused,
    since its numbers are not the ones the model learnt from."""

    def __init__(
        self,
        *,
        audio_extractor: str = "",
        version: str = "",
        visual_extractor: str = "",
        visual_version: str = "",
        alignment: str = "clip",
        speech_model: str = WHISPER_BASE,
        language: str | None = None,
        chinese_script: ChineseScript = ChineseScript.simplified,
    ) -> None:
        self.alignment = alignment
        # The service calls a reader from several threads; openSMILE's wrapper is not documented
        # as thread-safe and a face-mesh graph runs one recording at a time, so the extractors
        # run one recording at a time (the transcriber does not need this: CTranslate2 queues
        # concurrent calls itself).
        self._extracting = threading.Lock()
        self.extractor = None
        self.visual = None
        if audio_extractor:
            from crosssent.features import audio

            self.extractor = _checked(audio.audio_extractor, audio.extractor_version, audio_extractor, version, "audio")
        if visual_extractor:
            from crosssent.features import visual

            self.visual = _checked(
                visual.visual_extractor, visual.extractor_version, visual_extractor, visual_version, "visual stream"
            )
        self.transcriber = Transcriber(model=speech_model, language=language, chinese_script=chinese_script)

    @classmethod
    def for_model(cls, prep: Any, **speech: Any) -> RecordingReader:
        """The reader of a model folder's ``Preprocessing``: its extractors where it was trained on
        streams built from recordings; ``speech``: speech_model, language, chinese_script."""
        return cls(
            audio_extractor=prep.audio_extractor if prep.audio_dim else "",
            version=prep.audio_extractor_version,
            visual_extractor=prep.visual_extractor if prep.visual_dim else "",
            visual_version=prep.visual_extractor_version,
            alignment=prep.alignment,
            **speech,
        )

    def __call__(self, path: Path) -> Recording:
        from crosssent.features.build import clip_stream, visual_stream, word_spans
        from crosssent.features.media import SAMPLE_RATE, read_audio

        samples = read_audio(path)
        need_words = (self.extractor is not None or self.visual is not None) and self.alignment == "word"
        text, language, words = self.transcriber.recognise(samples, where=path, word_times=need_words)
        spans = word_spans(text, words, len(samples) / SAMPLE_RATE) if need_words else None
        audio = visual = None
        missing = ""
        with self._extracting:
            if self.extractor is not None:
                audio = clip_stream(samples, self.extractor, self.alignment, spans, where=path)
            if self.visual is not None:
                try:
                    visual = visual_stream(path, self.visual, self.alignment, spans)
                except ValueError as err:
                    missing = str(err)
        return Recording(
            clip=path.stem,
            path=path,
            text=text,
            language=language,
            duration_s=len(samples) / SAMPLE_RATE,
            audio=audio,
            visual=visual,
            visual_missing=missing,
        )
