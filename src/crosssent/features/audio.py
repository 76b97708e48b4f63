"""Audio extractors: a recording's 16 kHz samples -> frames (T, width) at a fixed frame rate.

- ``whisper``: the encoder states of Whisper base (512 per frame, 50 frames/s), the speech model
  that ``crosssent transcribe`` already ships (CTranslate2, int8 on the CPU). A recording is
  encoded in windows of at most 30 s, Whisper's own window, and the states are concatenated.
- ``egemaps``: openSMILE's eGeMAPS v02 low-level descriptors (25 per frame, 100 frames/s: pitch,
  loudness, jitter, shimmer, formants, spectral balance), the interpretable standard of the field
  (the ``opensmile`` package, whose configs ship inside it).

Each extractor has a name and a version; both are stored with the data (``crosssent.json``) and
with a model trained on it (``preprocessing.json``), so that new recordings are described by the
same extractor as the training data. Nothing is downloaded: both run from installed packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crosssent.features.media import SAMPLE_RATE

AUDIO_EXTRACTORS = ("whisper", "egemaps")
WINDOW_SECONDS = 30  # Whisper's input window


@dataclass(frozen=True)
class ExtractorInfo:
    name: str
    version: str  # changes whenever the same recording could give other numbers
    width: int
    frames_per_second: float


class AudioExtractor(Protocol):
    info: ExtractorInfo

    def __call__(self, audio: np.ndarray) -> np.ndarray:  # (samples,) at 16 kHz -> (T, width)
        ...


class WhisperStates:
    """Whisper base's encoder states."""

    def __init__(self, *, threads: int = 1) -> None:
        try:
            import ctranslate2
            from faster_whisper.feature_extractor import FeatureExtractor
        except ImportError:
            raise ValueError("the whisper audio features need faster-whisper (pip install 'crosssent[transcribe]')") from None
        from crosssent.features.transcribe import whisper_base_folder

        self._ctranslate2 = ctranslate2
        self._model = ctranslate2.models.Whisper(
            str(whisper_base_folder()), device="cpu", compute_type="int8", intra_threads=threads
        )
        self._mel = FeatureExtractor(feature_size=80)
        self.info = ExtractorInfo(name="whisper", version=extractor_version("whisper"), width=512, frames_per_second=50.0)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        step = WINDOW_SECONDS * SAMPLE_RATE
        states = []
        for start in range(0, max(len(audio), 1), step):
            mel = self._mel(audio[start : start + step])  # (80, frames at 100/s)
            frames = mel.shape[1] - mel.shape[1] % 2
            if frames < 2:
                continue
            window = self._ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None, :, :frames], dtype=np.float32))
            states.append(np.asarray(self._model.encode(window, to_cpu=True))[0])  # (frames / 2, 512)
        if not states:
            return np.zeros((0, 512), dtype=np.float32)
        return np.concatenate(states).astype(np.float32)


class Egemaps:
    """openSMILE's eGeMAPS v02 low-level descriptors."""

    def __init__(self) -> None:
        try:
            import opensmile
        except ImportError:
            raise ValueError("the egemaps audio features need opensmile (pip install 'crosssent[features]')") from None
        self._smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.LowLevelDescriptors
        )
        self.info = ExtractorInfo(
            name="egemaps", version=extractor_version("egemaps"), width=len(self._smile.feature_names), frames_per_second=100.0
        )

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        frames = self._smile.process_signal(audio, SAMPLE_RATE)
        return np.nan_to_num(frames.to_numpy(dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def extractor_version(name: str) -> str:
    """The version of extractor ``name``, without loading its model (what a build cache and a
    model folder record, and what a new recording's extractor must match)."""
    if name == "whisper":
        from crosssent.features.transcribe import WHISPER_SHA256

        return f"whisper-base encoder, ctranslate2 int8, model {WHISPER_SHA256[:12]}"
    if name == "egemaps":
        try:
            import opensmile
        except ImportError:
            raise ValueError("the egemaps audio features need opensmile (pip install 'crosssent[features]')") from None
        return f"eGeMAPSv02 low-level descriptors, opensmile {opensmile.__version__}"
    raise ValueError(f"unknown audio extractor {name!r}; choose from {', '.join(AUDIO_EXTRACTORS)} or none")


def audio_extractor(name: str, *, threads: int = 1) -> AudioExtractor:
    """The extractor called ``name`` (``AUDIO_EXTRACTORS``), loaded once."""
    if name == "whisper":
        return WhisperStates(threads=threads)
    if name == "egemaps":
        return Egemaps()
    raise ValueError(f"unknown audio extractor {name!r}; choose from {', '.join(AUDIO_EXTRACTORS)} or none")
