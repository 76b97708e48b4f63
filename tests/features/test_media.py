"""Decoding recordings: 16 kHz mono float32, one-line errors naming the file."""

import wave
from pathlib import Path

import numpy as np
import pytest

from crosssent.features.media import SAMPLE_RATE, add_noise, is_silent, read_audio


def write_tone(path: Path, *, seconds: float = 1.0, rate: int = 22_050, amplitude: float = 0.3, hz: float = 220.0) -> Path:
    """A mono 16-bit WAV of a sine tone (amplitude 0 gives digital silence)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


def test_a_recording_is_resampled_to_16_khz_mono(tmp_path):
    audio = read_audio(write_tone(tmp_path / "tone.wav", seconds=1.5, rate=22_050))
    assert audio.dtype == np.float32 and abs(len(audio) - 1.5 * SAMPLE_RATE) < 400
    assert 0.2 < np.abs(audio).max() < 0.4
    assert not is_silent(audio)
    assert is_silent(read_audio(write_tone(tmp_path / "quiet.wav", amplitude=0.0)))
    assert not is_silent(read_audio(write_tone(tmp_path / "soft.wav", amplitude=0.005)))  # quiet speech is speech


def test_unreadable_recordings_are_one_line_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match="nope.wav: no such file"):
        read_audio(tmp_path / "nope.wav")
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="text.mp4: cannot read it as audio or video"):
        read_audio(tmp_path / "text.mp4")


def test_waveform_noise_has_the_asked_snr_and_is_the_same_for_the_same_seed():
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE)).astype(np.float32)
    for snr in (20.0, 10.0, 0.0):
        noisy = add_noise(tone, snr, seed=3)
        measured = 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) / np.mean((noisy - tone).astype(np.float64) ** 2))
        assert abs(measured - snr) < 0.2 and noisy.dtype == np.float32
    assert np.array_equal(add_noise(tone, 10.0, seed=3), add_noise(tone, 10.0, seed=3))
    assert not np.array_equal(add_noise(tone, 10.0, seed=3), add_noise(tone, 10.0, seed=4))
