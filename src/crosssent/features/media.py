"""Decoding recordings: anything FFmpeg reads (wav, flac, mp3, mp4, mkv, ...), through PyAV.

Audio comes out as 16 kHz mono float32 in [-1, 1], the rate every audio extractor here reads.
Every failure is a ``ValueError`` naming the file: missing, unreadable, no audio track, empty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
MEDIA_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".mp4", ".mkv", ".mov", ".avi", ".webm")


def read_audio(path: Path) -> np.ndarray:
    """(samples,) float32 at ``SAMPLE_RATE``, mono."""
    import av
    from faster_whisper.audio import decode_audio

    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ValueError(f"{path}: no audio track")
        audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, OSError) as err:
        reason = getattr(err, "strerror", None) or (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{path}: cannot read it as audio or video ({reason})") from None
    if audio.size == 0:
        raise ValueError(f"{path}: its audio track is empty")
    return np.asarray(audio, dtype=np.float32)


def is_silent(audio: np.ndarray, *, threshold_db: float = -70.0) -> bool:
    """True when no 25 ms window of ``audio`` is louder than ``threshold_db`` (RMS, dB full scale)."""
    window = SAMPLE_RATE // 40
    usable = audio[: len(audio) // window * window].reshape(-1, window) if len(audio) >= window else audio[None, :]
    rms = np.sqrt(np.mean(np.square(usable, dtype=np.float64), axis=1))
    return bool(20 * np.log10(rms.max() + 1e-12) < threshold_db)


def add_noise(audio: np.ndarray, snr_db: float, *, seed: int) -> np.ndarray:
    """``audio`` with white Gaussian noise added at ``snr_db`` against the recording's own mean
    power (a real-world corruption, applied before any feature is extracted); seeded, so the same
    clip gets the same noise in every build."""
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    noise = np.random.default_rng(seed).standard_normal(len(audio)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (audio + noise).astype(np.float32)
