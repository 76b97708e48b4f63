import pickle

import numpy as np
import pytest

from crosssent.data.dataset import load_dataset
from crosssent.data.sources.mmsa import convert


def mmsa_split(n, *, offset=0, frames=5, da=4, dv=3, seed=0):
    rng = np.random.default_rng(seed + offset)
    audio = rng.normal(size=(n, frames, da)).astype(np.float32)
    audio[0, -2:] = 0.0
    return {
        "raw_text": np.array([f"clip number {i}" for i in range(n)], dtype=object),
        "id": np.array([f"vid${offset}_{i}" for i in range(n)], dtype=object),
        "text": rng.normal(size=(n, frames, 8)).astype(np.float32),
        "text_bert": np.zeros((n, 3, frames), dtype=np.float32),
        "audio": audio,
        "vision": rng.normal(size=(n, frames, dv)).astype(np.float32),
        "audio_lengths": [frames - 2] + [frames] * (n - 1),
        "vision_lengths": [frames] * n,
        "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
        "regression_labels_T": rng.uniform(-3, 3, n).astype(np.float32),
        "regression_labels_A": rng.uniform(-3, 3, n).astype(np.float32),
        "regression_labels_V": rng.uniform(-3, 3, n).astype(np.float32),
    }


def write(tmp_path, data, name="unaligned_50.pkl"):
    path = tmp_path / name
    with path.open("wb") as handle:
        pickle.dump(data, handle, protocol=4)
    return path


def full():
    return {"train": mmsa_split(6), "valid": mmsa_split(3, offset=1), "test": mmsa_split(4, offset=2)}


def test_converts_mmsa_schema(tmp_path):
    data = full()
    data["train"]["audio"][1, 2, 0] = -np.inf
    data["train"]["audio"][2, 0, 1] = np.nan
    path, report = convert(write(tmp_path, data), tmp_path / "out", name="mosi", task="mosi")
    table, meta = load_dataset(path)
    assert meta.audio_dim == 4 and meta.visual_dim == 3 and meta.alignment == "unaligned"
    assert table["audio_length"][0] == 3  # from audio_lengths
    assert "label_T" in table.column_names
    assert any("replaced 1 NaN and 1 inf" in line for line in report)
    assert np.isfinite(np.array(table[1]["audio"])).all()
    assert table["text"][0] == "clip number 0"


def test_strict_refuses_non_finite_features(tmp_path):
    data = full()
    data["valid"]["vision"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"valid.vision holds 1 NaN and 0 inf values \(--strict\)"):
        convert(write(tmp_path, data), tmp_path / "out", name="m", task="mosi", strict=True)
    assert not (tmp_path / "out").exists()


def test_missing_key_is_named(tmp_path):
    data = full()
    del data["test"]["regression_labels"]
    with pytest.raises(ValueError, match="split 'test' has no key 'regression_labels'"):
        convert(write(tmp_path, data), tmp_path / "out", name="m", task="mosi")
    del data["valid"]
    with pytest.raises(ValueError, match="missing key 'valid'"):
        convert(write(tmp_path, data), tmp_path / "out", name="m", task="mosi")


class Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/crosssent-pwned",))


def test_a_forbidden_object_stops_the_conversion(tmp_path):
    """safe_load's own cases are in tests/data/test_safe_pickle.py; here: convert goes through it."""
    target = tmp_path / "evil.pkl"
    target.write_bytes(pickle.dumps({"train": Exploit()}))
    with pytest.raises(ValueError, match="forbidden object (posix|os).system"):
        convert(target, tmp_path / "out", name="m", task="mosi")
    assert not (tmp_path / "out").exists()
    import os

    assert not os.path.exists("/tmp/crosssent-pwned")
