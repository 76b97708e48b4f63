import numpy as np
import pytest

from crosssent.data.dataset import load_dataset
from crosssent.data.sources.synthetic import POLARITY, generate


def test_tone_is_in_av_only_and_options_apply(tmp_path):
    path = generate(tmp_path / "s", n_train=300, n_valid=20, n_test=20, seed=3, missing_audio=0.5)
    table, meta = load_dataset(path)
    assert meta.audio_dim == 8 and meta.visual_dim == 6 and meta.alignment == "word"
    train = table.filter(lambda r: r["split"] == "train")
    lengths = np.array(train["audio_length"])
    assert 0.35 < (lengths == 0).mean() < 0.65
    # the label minus the text score is explained by the visual smile dimension, not the words
    residual, smile = [], []
    for row in train:
        words = row["text"].split()
        scores = [POLARITY[w] for w in words if w in POLARITY]
        residual.append(row["label"] - (np.mean(scores) if scores else 0.0))
        smile.append(np.mean(np.array(row["visual"])[:, 0]))
        assert len(row["visual"]) == len(words)
    assert np.corrcoef(residual, smile)[0, 1] > 0.7


def test_same_seed_same_data_and_alignment_modes(tmp_path):
    a, _ = load_dataset(generate(tmp_path / "a", n_train=10, n_valid=5, n_test=5, seed=7))
    b, _ = load_dataset(generate(tmp_path / "b", n_train=10, n_valid=5, n_test=5, seed=7))
    assert a["text"] == b["text"] and a["label"] == b["label"]
    clip, meta = load_dataset(generate(tmp_path / "c", n_train=10, n_valid=5, n_test=5, alignment="clip"))
    assert meta.alignment == "clip" and set(clip["audio_length"]) == {1}
    un, _ = load_dataset(generate(tmp_path / "u", n_train=10, n_valid=5, n_test=5, alignment="unaligned"))
    assert all(n == 3 * len(t.split()) for n, t in zip(un["audio_length"], un["text"]))


def test_shift_moves_frames(tmp_path):
    base, _ = load_dataset(generate(tmp_path / "a", n_train=5, n_valid=2, n_test=2, seed=1))
    moved, _ = load_dataset(generate(tmp_path / "b", n_train=5, n_valid=2, n_test=2, seed=1, shift=1))
    assert np.allclose(np.roll(np.array(base[0]["audio"]), 1, axis=0), np.array(moved[0]["audio"]))


def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match="missing_audio must be in"):
        generate(tmp_path / "x", missing_audio=1.5)
