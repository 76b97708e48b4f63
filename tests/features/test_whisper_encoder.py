"""Whisper base's encoder in torch, from the shipped CTranslate2 weights."""

import struct

import numpy as np
import pytest

from crosssent.features.whisper_encoder import encoder_layer_count, encoder_layers, read_ctranslate2_encoder
from tests.features.test_transcribe import needs_whisper


def _tone_mel() -> np.ndarray:
    from faster_whisper.feature_extractor import FeatureExtractor

    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    return np.ascontiguousarray(FeatureExtractor(feature_size=80)(tone)[:, :100], dtype=np.float32)


@needs_whisper
def test_the_torch_encoder_gives_ctranslate2s_states_and_stops_at_the_asked_layer():
    import ctranslate2

    from crosssent.features.transcribe import whisper_base_folder

    folder = whisper_base_folder()
    weights = read_ctranslate2_encoder(folder / "model.bin")
    mel = _tone_mel()
    states = encoder_layers(weights, mel)
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    expected = np.asarray(model.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))[0]
    assert encoder_layer_count(weights) == 6 and len(states) == 6 and all(s.shape == (50, 512) for s in states)
    assert np.abs(states[-1].numpy() - expected).max() < 1e-2
    assert np.abs(states[2].numpy() - expected).max() > 0.1  # a middle layer is not the output
    first_three = encoder_layers(weights, mel, up_to=3)
    assert len(first_three) == 3 and np.allclose(first_three[-1].numpy(), states[2].numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="layers 1-6, not 7"):
        encoder_layers(weights, mel, up_to=7)


def test_a_file_that_is_no_ctranslate2_model_is_refused(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\x01\x00")
    with pytest.raises(ValueError, match="not a CTranslate2 model file"):
        read_ctranslate2_encoder(bad)
    bad.write_bytes((5).to_bytes(4, "little") + b"\x00\x00" + bytes(8))
    with pytest.raises(ValueError, match="format 5, this reader knows 6"):
        read_ctranslate2_encoder(bad)


def _model_file(path, dtype: int) -> None:
    """A one-variable CTranslate2 model.bin: a 2 x 2 encoder weight of dtype id ``dtype``."""

    def text(value: str) -> bytes:
        raw = value.encode() + b"\x00"
        return struct.pack("<H", len(raw)) + raw

    size = 16 if dtype == 0 else 4  # four values of 4 bytes (float32) or 1 byte (int8)
    path.write_bytes(
        struct.pack("<I", 6)
        + text("WhisperSpec")
        + struct.pack("<II", 1, 1)
        + text("encoder/conv1/weight")
        + struct.pack("<BII", 2, 2, 2)
        + struct.pack("<BI", dtype, size)
        + bytes(size)
    )


def test_quantised_weights_are_refused_float_weights_are_read(tmp_path):
    _model_file(tmp_path / "int8.bin", dtype=1)
    with pytest.raises(ValueError, match="encoder/conv1/weight is quantised \\(int8\\)"):
        read_ctranslate2_encoder(tmp_path / "int8.bin")
    _model_file(tmp_path / "float.bin", dtype=0)
    weights = read_ctranslate2_encoder(tmp_path / "float.bin")
    assert weights["encoder/conv1/weight"].shape == (2, 2)
    (tmp_path / "cut.bin").write_bytes((tmp_path / "float.bin").read_bytes()[:-8])
    with pytest.raises(ValueError, match="cut.bin: ends inside encoder/conv1/weight"):
        read_ctranslate2_encoder(tmp_path / "cut.bin")
    (tmp_path / "cut.bin").write_bytes((tmp_path / "float.bin").read_bytes()[:30])
    with pytest.raises(ValueError, match="ends inside a variable's header"):
        read_ctranslate2_encoder(tmp_path / "cut.bin")
