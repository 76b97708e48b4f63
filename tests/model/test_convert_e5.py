import struct

import numpy as np
import pytest

from crosssent.model.convert_e5 import dequantize_q4, read_e5s1


def test_q4_block_layout():
    # one block of 32 weights: scale 0.5; byte j holds weight j (low nibble) and j+16 (high)
    nibbles_low = np.arange(16) % 16
    nibbles_high = (15 - np.arange(16)) % 16
    raw = struct.pack("<e", 0.5) + bytes(int(lo | (hi << 4)) for lo, hi in zip(nibbles_low, nibbles_high))
    weights = dequantize_q4(raw, 1, 32)[0]
    assert weights[:16].tolist() == [(n - 8) * 0.5 for n in nibbles_low]
    assert weights[16:].tolist() == [(n - 8) * 0.5 for n in nibbles_high]


def test_not_an_e5s1_file(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ValueError, match="not an E5S1 model file"):
        read_e5s1(tmp_path / "x.bin")
    (tmp_path / "y.bin").write_bytes(b"E5S1" + b"\0" * 10)
    with pytest.raises(ValueError, match="truncated E5S1 file"):
        read_e5s1(tmp_path / "y.bin")
