import numpy as np
import pytest

from crosssent.data.align import align_dataset, resample
from crosssent.data.dataset import DatasetMeta, load_dataset, save_dataset
from crosssent.model.backbones import tiny_tokenizer


def _save(tmp_path, alignment, audio, text=("good movie", "bad film really", "it was")):
    meta = DatasetMeta(name="a", task="mosi", label_min=-3, label_max=3, alignment=alignment, audio_dim=1)
    cols = {
        "id": ["c0", "c1", "c2"],
        "text": list(text),
        "label": [1.0, -1.0, 0.0],
        "split": ["train", "valid", "test"],
        "audio": audio,
    }
    save_dataset(cols, meta, tmp_path / alignment, where="t")
    return load_dataset(tmp_path / alignment)


def test_word_alignment_follows_word_ids(tmp_path):
    tok = tiny_tokenizer()
    table, meta = _save(tmp_path, "word", [[[1.0], [2.0]], [[3.0], [4.0], [5.0]], []])
    aligned = align_dataset(table, meta, tok, max_len=12, cache_root=None)
    row = aligned[1]
    enc = tok(["bad", "film", "really"], is_split_into_words=True, max_length=12, truncation=True, padding="max_length")
    expected = [0.0 if w is None else [3.0, 4.0, 5.0][w] for w in enc.word_ids()]
    assert row["audio"][:, 0].tolist() == expected
    assert row["audio_mask"].tolist() == [0 if w is None else 1 for w in enc.word_ids()]
    assert aligned[2]["audio_mask"].sum() == 0  # clip without audio


def test_word_alignment_refuses_frame_count_mismatch(tmp_path):
    table, meta = _save(tmp_path, "word", [[[1.0]], [[3.0], [4.0], [5.0]], []])
    with pytest.raises(ValueError, match="clip 'c0': audio has 1 word-aligned frames for 2 words"):
        align_dataset(table, meta, tiny_tokenizer(), max_len=12, cache_root=None)


def test_unaligned_resampled_into_cls_content_padding_layout(tmp_path):
    table, meta = _save(tmp_path, "unaligned", [[[0.0], [10.0]], [[1.0]], []])
    aligned = align_dataset(table, meta, tiny_tokenizer(), max_len=8, cache_root=None)
    row = aligned[0]  # "good movie" -> [CLS] good m ##o ##v ##i ##e [SEP]? (content tokens)
    content = row["attention_mask"].clone()
    n_content = int(content.sum()) - 2
    assert row["audio_mask"][0] == 0  # [CLS]
    values = row["audio"][1 : 1 + n_content, 0].numpy()
    assert values[0] == 0.0 and values[-1] == 10.0 and np.all(np.diff(values) > 0)


def test_clip_level_is_a_length_one_sequence(tmp_path):
    table, meta = _save(tmp_path, "clip", [[[2.0]], [], [[1.0]]])
    aligned = align_dataset(table, meta, tiny_tokenizer(), max_len=8, cache_root=None)
    assert aligned[0]["audio"].shape == (1, 1) and aligned[1]["audio_mask"].tolist() == [0]


def test_resample():
    frames = np.arange(4, dtype=np.float32)[:, None]
    assert resample(frames, 7)[:, 0].tolist() == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5, 3])
    assert resample(np.ones((1, 2), np.float32), 3).shape == (3, 2)


def test_cache_is_built_once_and_reused(tmp_path, synthetic_dir):
    table, meta = load_dataset(synthetic_dir)
    tok = tiny_tokenizer()
    first = align_dataset(table, meta, tok, max_len=16, cache_root=tmp_path / "cache")
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    second = align_dataset(table, meta, tok, max_len=16, cache_root=tmp_path / "cache")
    assert entries[0].stat().st_mtime_ns == stamp
    assert second[5]["input_ids"].tolist() == first[5]["input_ids"].tolist()
    align_dataset(table, meta, tok, max_len=20, cache_root=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2  # another max_len, another entry
