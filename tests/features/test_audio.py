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


@needs_whisper
def test_a_middle_whisper_layer_is_its_own_extractor_with_its_own_version(tmp_path):
    audio = read_audio(write_tone(tmp_path / "a.wav", seconds=2.0))
    middle, last = audio_extractor("whisper-layer2"), audio_extractor("whisper")
    frames = middle(audio)
    assert frames.shape == last(audio).shape and frames.shape[1] == 512 and np.isfinite(frames).all()
    assert middle.info.name == "whisper-layer2" and middle.info.frames_per_second == 50.0
    assert "layer 2" in middle.info.version and middle.info.version != last.info.version
    assert audio_extractor("whisper-layer3")(audio).shape == frames.shape
    assert not np.allclose(audio_extractor("whisper-layer3")(audio), frames)  # another layer, other states
    long = np.concatenate([audio] * 16)  # 32 s: two of Whisper's 30 s windows
    assert len(middle(long)) == pytest.approx(50 * 32, abs=2)


def test_an_unknown_extractor_is_named():
    with pytest.raises(ValueError, match="unknown audio extractor 'mfcc'; choose from whisper, whisper-layer1 to whisper-layer5"):
        audio_extractor("mfcc")
    with pytest.raises(ValueError, match="unknown audio extractor 'whisper-layer6'"):
        audio_extractor("whisper-layer6")
