"""The exported model folder: round trip, a bad preprocessing file, compatibility of new data.
(Incomplete and tampered folders are tested through the command line in test_cli.py.)"""

import json

import pytest
import torch

from crosssent.data.dataset import DatasetMeta
from crosssent.model.backbones import tiny_random_backbone, tiny_tokenizer
from crosssent.model.configuration import CrossSentConfig
from crosssent.model.folder import (
    PREPROCESSING_NAME,
    Preprocessing,
    check_compatible,
    load_model_folder,
    load_preprocessing,
    save_model_folder,
)
from crosssent.model.modeling import build_model

PREP = Preprocessing(
    max_len=16, alignment="clip", audio_dim=4, visual_dim=0, task="mosi", label_min=-3, label_max=3, trained_on="toy"
)


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(0)
    model = build_model(CrossSentConfig(audio_dim=4, inject_layer=1, adapter_dim=8), backbone=tiny_random_backbone())
    save_model_folder(model, tiny_tokenizer(), PREP, tmp_path / "model")
    return model, tmp_path / "model"


def test_an_exported_folder_loads_back_the_same_model(exported):
    model, folder = exported
    again, tokenizer, prep = load_model_folder(folder)
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
        load_model_folder(folder)
    assert "\n" not in str(caught.value)


def test_new_data_must_match_the_streams_and_alignment_the_model_was_trained_with():
    meta = DatasetMeta(name="other", task="mosi", label_min=-3, label_max=3, alignment="clip", audio_dim=4)
    check_compatible(PREP, meta, where="data/other")  # matches: no error
    with pytest.raises(ValueError, match=r"data/other: audio_dim=7 but the model was trained with audio_dim=4"):
        check_compatible(PREP, meta.model_copy(update={"audio_dim": 7}), where="data/other")
    with pytest.raises(ValueError, match=r"alignment=word but the model was trained with alignment=clip"):
        check_compatible(PREP, meta.model_copy(update={"alignment": "word"}), where="data/other")
