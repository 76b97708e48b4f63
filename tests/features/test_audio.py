"""Audio extractors: frames at their rate and width, named and versioned."""

import importlib.util

import numpy as np
import pytest

from crosssent.features.audio import audio_extractor
from crosssent.features.media import read_audio
from tests.features.test_media import write_tone
from tests.features.test_transcribe import needs_whisper

needs_opensmile = pytest.mark.skipif(
    importlib.util.find_spec("opensmile") is None, reason="the features extra is not installed (make setup-real)"
)


@needs_opensmile
def test_egemaps_gives_25_descriptors_at_100_frames_a_second(tmp_path):
    extractor = audio_extractor("egemaps")
    frames = extractor(read_audio(write_tone(tmp_path / "a.wav", seconds=2.0)))
    assert extractor.info.width == 25 and frames.shape[1] == 25 and 190 <= len(frames) <= 210
    assert np.isfinite(frames).all() and "opensmile" in extractor.info.version
    louder = extractor(read_audio(write_tone(tmp_path / "b.wav", seconds=2.0, amplitude=0.9)))
    assert louder[:, 0].mean() > frames[:, 0].mean()  # the first descriptor is loudness


@needs_whisper
def test_whisper_gives_512_states_at_50_frames_a_second(tmp_path):
    extractor = audio_extractor("whisper")
    frames = extractor(read_audio(write_tone(tmp_path / "a.wav", seconds=2.0)))
    assert frames.shape[1] == 512 and 95 <= len(frames) <= 101 and np.isfinite(frames).all()
    assert extractor.info.frames_per_second == 50.0 and "whisper-base" in extractor.info.version


def test_an_unknown_extractor_is_named():
    with pytest.raises(ValueError, match="unknown audio extractor 'mfcc'; choose from whisper, egemaps or none"):
        audio_extractor("mfcc")
