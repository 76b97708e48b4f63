"""Audio extractors: a recording's 16 kHz samples -> frames (T, width) at a fixed frame rate.

- ``whisper``: the encoder states of Whisper base (512 per frame, 50 frames/s), the speech model
  that ``crosssent transcribe`` already ships (CTranslate2, int8 on the CPU). A recording is
  encoded in windows of at most 30 s, Whisper's own window, and the states are concatenated.
- ``whisper-layerN`` (N = 1-5): the states after layer N of the same encoder (512 per frame,
  50 frames/s), run in torch float32 from the same weights (features/whisper_encoder.py). Whisper's
  middle layers carry more of a voice's emotion than its output, which serves the decoder's words
  (scripts/probe_whisper_layers.py measures this on RAVDESS).
- ``whisper-layersA-B`` (1 <= A < B <= 6): the states after layers A to B of the same encoder,
  concatenated per frame (512 x (B - A + 1) per frame, 50 frames/s; layer 6 with the encoder's
  final LayerNorm, as ``whisper`` returns it), for a model that reads several depths at once.
- ``egemaps``: openSMILE's eGeMAPS v02 low-level descriptors (25 per frame, 100 frames/s: pitch,
  loudness, jitter, shimmer, formants, spectral balance), the interpretable standard of the field
  (the ``opensmile`` package, whose configs ship inside it).

Each extractor has a name and a version; both are stored with the data (``crosssent.json``) and
with a model trained on it (``preprocessing.json``), so that new recordings are described by the
same extractor as the training data. Nothing is downloaded: both run from installed packages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from crosssent.features.media import SAMPLE_RATE

WHISPER_MIDDLE_LAYERS = tuple(f"whisper-layer{n}" for n in range(1, 6))
WHISPER_LAYER_SPANS = tuple(f"whisper-layers{a}-{b}" for a in range(1, 6) for b in range(a + 1, 7))
AUDIO_EXTRACTORS = ("whisper", *WHISPER_MIDDLE_LAYERS, *WHISPER_LAYER_SPANS, "egemaps")
_CHOICES = "whisper, whisper-layer1 to whisper-layer5, whisper-layersA-B (1 <= A < B <= 6), egemaps or none"
WINDOW_SECONDS = 30  # Whisper's input window


def whisper_layers(name: str) -> tuple[int, int]:
    """The first and last encoder layer an extractor ``whisper-layerN`` / ``whisper-layersA-B`` reads."""
    if name in WHISPER_MIDDLE_LAYERS:
        layer = int(name.removeprefix("whisper-layer"))
        return layer, layer
    if name in WHISPER_LAYER_SPANS:
        first, last = name.removeprefix("whisper-layers").split("-")
        return int(first), int(last)
    raise ValueError(f"unknown audio extractor {name!r}; choose from {_CHOICES}")


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


def whisper_mel_extractor() -> Any:
    """faster-whisper's log-mel front end (80 bands, 100 frames/s), as Whisper base reads it."""
    try:
        from faster_whisper.feature_extractor import FeatureExtractor
    except ImportError:
        raise ValueError("the whisper audio features need faster-whisper (pip install 'crosssent[transcribe]')") from None
    return FeatureExtractor(feature_size=80)


def whisper_mel_windows(mel_of: Any, audio: np.ndarray) -> Iterator[np.ndarray]:
    """Whisper's log-mel of ``audio`` in windows of at most 30 s: (80, even frames at 100/s) each."""
    step = WINDOW_SECONDS * SAMPLE_RATE
    for start in range(0, max(len(audio), 1), step):
        mel = mel_of(audio[start : start + step])
        frames = mel.shape[1] - mel.shape[1] % 2
        if frames >= 2:
            yield np.ascontiguousarray(mel[:, :frames], dtype=np.float32)


def _joined(states: list[np.ndarray], width: int) -> np.ndarray:
    """The windows' states one after the other: (frames, width); no frames for no window."""
    return np.concatenate(states).astype(np.float32) if states else np.zeros((0, width), dtype=np.float32)


class WhisperStates:
    """Whisper base's encoder states (its last layer, CTranslate2 int8)."""

    def __init__(self, *, threads: int = 1) -> None:
        self._mel = whisper_mel_extractor()
        import ctranslate2

        from crosssent.features.transcribe import whisper_base_folder

        self._ctranslate2 = ctranslate2
        self._model = ctranslate2.models.Whisper(
            str(whisper_base_folder()), device="cpu", compute_type="int8", intra_threads=threads
        )
        self.info = ExtractorInfo(name="whisper", version=extractor_version("whisper"), width=512, frames_per_second=50.0)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        states = []
        for mel in whisper_mel_windows(self._mel, audio):
            window = self._ctranslate2.StorageView.from_array(mel[None])
            states.append(np.asarray(self._model.encode(window, to_cpu=True))[0])  # (frames / 2, 512)
        return _joined(states, self.info.width)


class WhisperLayerStates:
    """The states after one layer of Whisper base's encoder, or after each of a span of layers
    concatenated per frame (torch, float32); the layers above the last one read are never run.
    Threads: torch's (``torch.set_num_threads``), set by the caller."""

    def __init__(self, *, name: str) -> None:
        self.first, self.last = whisper_layers(name)
        self._mel = whisper_mel_extractor()
        from crosssent.features.transcribe import whisper_base_folder
        from crosssent.features.whisper_encoder import read_ctranslate2_encoder

        self._weights = read_ctranslate2_encoder(whisper_base_folder() / "model.bin")
        width = 512 * (self.last - self.first + 1)
        self.info = ExtractorInfo(name=name, version=extractor_version(name), width=width, frames_per_second=50.0)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        import torch

        from crosssent.features.whisper_encoder import encoder_layers

        states = []
        with torch.inference_mode():
            for mel in whisper_mel_windows(self._mel, audio):
                layers = encoder_layers(self._weights, mel, up_to=self.last)[self.first - 1 :]  # (frames / 2, 512) each
                states.append(torch.cat(layers, dim=-1).numpy())
        return _joined(states, self.info.width)


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
    if name in WHISPER_MIDDLE_LAYERS:
        from crosssent.features.transcribe import WHISPER_SHA256

        return f"whisper-base encoder layer {name.removeprefix('whisper-layer')}, torch float32, model {WHISPER_SHA256[:12]}"
    if name in WHISPER_LAYER_SPANS:
        from crosssent.features.transcribe import WHISPER_SHA256

        first, last = whisper_layers(name)
        return f"whisper-base encoder layers {first}-{last} concatenated, torch float32, model {WHISPER_SHA256[:12]}"
    if name == "egemaps":
        try:
            import opensmile
        except ImportError:
            raise ValueError("the egemaps audio features need opensmile (pip install 'crosssent[features]')") from None
        return f"eGeMAPSv02 low-level descriptors, opensmile {opensmile.__version__}"
    raise ValueError(f"unknown audio extractor {name!r}; choose from {_CHOICES}")


def audio_extractor(name: str, *, threads: int = 1) -> AudioExtractor:
    """The extractor called ``name`` (``AUDIO_EXTRACTORS``), loaded once."""
    if name == "whisper":
        return WhisperStates(threads=threads)
    if name in WHISPER_MIDDLE_LAYERS or name in WHISPER_LAYER_SPANS:
        return WhisperLayerStates(name=name)
    if name == "egemaps":
        return Egemaps()
    raise ValueError(f"unknown audio extractor {name!r}; choose from {_CHOICES}")
