"""Imports of the real public releases; skipped cleanly when ../shared/data is absent."""

import csv
from pathlib import Path

import numpy as np
import pytest

from crosssent.data.dataset import load_dataset
from crosssent.data.sources.releases import bclstm_features, import_release

SOURCE = Path(__file__).resolve().parents[3].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not (SOURCE / "mosi").is_dir(), reason="../shared/data is not here")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("imports")
    return {
        name: load_dataset(import_release(name, SOURCE, root / name)[0])
        for name in ("mosi-clip", "mosi-bclstm", "mosei-text", "sims-text", "sims-text-en", "sims-text-bilingual")
    }


def test_mosi_clip_official_split_audio_only(imported):
    table, meta = imported["mosi-clip"]
    splits = table["split"]
    assert [splits.count(s) for s in ("train", "valid", "test")] == [1284, 229, 686]
    assert len(set(table["id"])) == 2199
    assert meta.audio_dim == 73 and meta.alignment == "clip"
    # the leaking text/video features of the bc-LSTM release must stay out, and say why
    assert meta.visual_dim == 0 and "visual" not in table.column_names
    assert any("NOT included" in n and "558 of the 686" in n for n in meta.notes)
    assert min(table["audio_length"]) == 1


def test_bclstm_join_matches_the_release_row_index():
    feats = bclstm_features(SOURCE)
    with (SOURCE / "mosi" / "derived" / "bc_lstm_row_index.csv").open() as handle:
        index = list(csv.DictReader(handle))
    assert len(feats) == len(index) == 2199
    rows = {}
    for split in ("train", "test"):
        with (SOURCE / "mosi" / "bc-LSTM" / "data" / "audio" / f"audio_{split}0.csv").open() as handle:
            rows[split] = list(csv.reader(handle))
    for entry in index[::97]:
        expected = np.asarray(rows[entry["bc_split"]][int(entry["row"])][:-1], dtype=np.float32)
        assert np.array_equal(feats[entry["utterance_id"]]["audio"], expected)
        assert feats[entry["utterance_id"]]["bc_split"] == entry["bc_split"]


def test_mosi_bclstm_speaker_independent_split(imported):
    table, meta = imported["mosi-bclstm"]
    assert meta.audio_dim == 73 and meta.visual_dim == 100
    videos = {}
    for clip, split in zip(table["id"], table["split"]):
        videos.setdefault(clip.rsplit("_", 1)[0], set()).add(split)
    assert all(len(s) == 1 for s in videos.values())
    counts = {s: sum(1 for v in videos.values() if s in v) for s in ("train", "valid", "test")}
    assert counts["test"] == 31 and counts["train"] + counts["valid"] == 62 and counts["valid"] == 6


def test_text_only_releases(imported):
    mosei, meta = imported["mosei-text"]
    assert meta.alignment == "none" and meta.task == "mosei" and mosei["split"].count("test") == 4653
    sims, meta = imported["sims-text"]
    assert meta.task == "sims" and meta.language == "zh" and len(sims) == 2281
    assert sims["split"].count("valid") == 456 and max(sims["label"]) <= 1.0


def test_sims_english_translation_keeps_clips_labels_and_split(imported):
    chinese, _ = imported["sims-text"]
    english, meta = imported["sims-text-en"]
    assert meta.language == "en" and any("English translation" in n for n in meta.notes)
    for column in ("id", "label", "split"):
        assert english[column] == chinese[column]
    assert all(text.isascii() for text in english["text"][:50])
    assert not any(text.isascii() for text in chinese["text"][:50])


def test_sims_bilingual_adds_english_copies_of_training_clips_only(imported):
    chinese, _ = imported["sims-text"]
    english, _ = imported["sims-text-en"]
    both, meta = imported["sims-text-bilingual"]
    assert meta.language == "zh+en" and any("#en" in n for n in meta.notes)
    assert [both["split"].count(s) for s in ("train", "valid", "test")] == [2 * 1368, 456, 457]
    assert both["id"][:2281] == chinese["id"] and both["text"][:2281] == chinese["text"]
    extra = {clip: (text, label) for clip, text, label in zip(both["id"][2281:], both["text"][2281:], both["label"][2281:])}
    for clip, text, label, split in zip(english["id"], english["text"], english["label"], english["split"]):
        assert (extra.get(f"{clip}#en") == (text, label)) == (split == "train"), clip
