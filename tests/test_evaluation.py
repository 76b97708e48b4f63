"""The exported model folder and scoring: round trip, compatibility checks, prediction files,
run comparison. (Scoring against training and against `crosssent predict` is tested in
test_training.py and test_prediction.py.)"""

import json

import numpy as np
import pytest
import torch

from crosssent.backbones import tiny_random_backbone, tiny_tokenizer
from crosssent.configuration import CrossSentConfig
from crosssent.data.dataset import DatasetMeta
from crosssent.evaluation import (
    PREPROCESSING_NAME, Preprocessing, check_compatible, compare_runs, export_model, load_exported,
    load_preprocessing, predict, read_predictions, write_predictions,
)
from crosssent.modeling import build_model

PREP = Preprocessing(max_len=16, alignment="clip", audio_dim=4, visual_dim=0, task="mosi",
                     label_min=-3, label_max=3, trained_on="toy")


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(0)
    model = build_model(CrossSentConfig(audio_dim=4, inject_layer=1, adapter_dim=8), backbone=tiny_random_backbone())
    export_model(model, tiny_tokenizer(), PREP, tmp_path / "model")
    return model, tmp_path / "model"


def test_an_exported_folder_loads_back_the_same_model(exported):
    model, folder = exported
    again, tokenizer, prep = load_exported(folder)
    assert prep == PREP and not again.training  # loaded ready to score
    enc = tokenizer(["a really good movie"], return_tensors="pt")
    inputs = dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], audio=torch.randn(1, 1, 4))
    model.eval()
    with torch.no_grad():
        assert torch.allclose(again(**inputs).prediction, model(**inputs).prediction)


def test_a_bad_preprocessing_file_is_one_line_naming_it(exported, tmp_path):
    _, folder = exported
    with pytest.raises(ValueError, match="not a CrossSent model folder"):
        load_preprocessing(tmp_path)
    path = folder / PREPROCESSING_NAME
    path.write_text(json.dumps({**PREP.model_dump(), "max_len": "long"}))
    with pytest.raises(ValueError, match=r"preprocessing.json: max_len: Input should be a valid integer") as caught:
        load_exported(folder)
    assert "\n" not in str(caught.value)


def test_new_data_must_match_the_streams_and_alignment_the_model_was_trained_with():
    meta = DatasetMeta(name="other", task="mosi", label_min=-3, label_max=3, alignment="clip", audio_dim=4)
    check_compatible(PREP, meta, where="data/other")  # matches: no error
    with pytest.raises(ValueError, match=r"data/other: audio_dim=7 but the model was trained with audio_dim=4"):
        check_compatible(PREP, meta.model_copy(update={"audio_dim": 7}), where="data/other")
    with pytest.raises(ValueError, match=r"alignment=word but the model was trained with alignment=clip"):
        check_compatible(PREP, meta.model_copy(update={"alignment": "word"}), where="data/other")


def test_only_audio_and_visual_can_be_hidden(exported):
    model, _ = exported
    with pytest.raises(ValueError, match="--hide text: choose from audio, visual"):
        predict(model, [], hide=("text",))


def test_prediction_files_read_back_one_split(tmp_path):
    rows = [("a", "valid", 1.0, 0.5), ("b", "test", -2.0, -1.25), ("c", "test", 0.0, 0.125)]
    write_predictions(tmp_path / "p.csv", rows)
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "id,split,label,prediction"
    assert read_predictions(tmp_path / "p.csv", "test") == [("b", -2.0, -1.25), ("c", 0.0, 0.125)]


def test_compare_runs_puts_finished_runs_side_by_side(tmp_path):
    for name, mae in (("full", 0.5), ("text", 0.75)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"test": {"mae": mae, "corr": 0.8}}))
    table = compare_runs([tmp_path / "full", tmp_path / "text"]).splitlines()
    assert table[0].split() == ["metric", "full", "text"]
    assert table[1].split() == ["mae", "0.5000", "0.7500"] and np.isclose(float(table[2].split()[2]), 0.8)
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(ValueError, match="unfinished: no metrics.json"):
        compare_runs([tmp_path / "full", tmp_path / "unfinished"])
    with pytest.raises(ValueError, match="has no 'valid' metrics"):
        compare_runs([tmp_path / "full"], split="valid")
