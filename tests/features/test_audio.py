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


@needs_whisper
def test_a_span_of_whisper_layers_is_their_states_side_by_side(tmp_path):
    audio = read_audio(write_tone(tmp_path / "a.wav", seconds=2.0))
    span = audio_extractor("whisper-layers1-2")
    frames = span(audio)  # (T, 1024)
    assert span.info.width == 1024 and frames.shape[1] == 1024 and span.info.frames_per_second == 50.0
    assert "layers 1-2 concatenated" in span.info.version
    np.testing.assert_allclose(frames[:, :512], audio_extractor("whisper-layer1")(audio), atol=1e-5)
    np.testing.assert_allclose(frames[:, 512:], audio_extractor("whisper-layer2")(audio), atol=1e-5)
    whole = audio_extractor("whisper-layers5-6")(audio)
    assert whole.shape == (len(frames), 1024)
    # the span's last layer is the encoder's output, with its final LayerNorm, as ``whisper`` gives
    # it (CTranslate2 in int8 there: close, not equal; layer 5's states are another thing entirely)
    output = audio_extractor("whisper")(audio)
    assert np.corrcoef(whole[:, 512:].ravel(), output.ravel())[0, 1] > 0.98
    assert np.corrcoef(whole[:, :512].ravel(), output.ravel())[0, 1] < 0.9


def test_an_unknown_extractor_is_named():
    with pytest.raises(ValueError, match="unknown audio extractor 'mfcc'; choose from whisper, whisper-layer1 to whisper-layer5"):
        audio_extractor("mfcc")
    with pytest.raises(ValueError, match="unknown audio extractor 'whisper-layer6'"):
        audio_extractor("whisper-layer6")
    for backwards in ("whisper-layers2-1", "whisper-layers3-3", "whisper-layers0-2", "whisper-layers1-7"):
        with pytest.raises(ValueError, match=f"unknown audio extractor '{backwards}'"):
            audio_extractor(backwards)
