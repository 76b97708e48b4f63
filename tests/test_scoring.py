"""Scoring: which streams can be withheld. (Scoring against training and against
`crosssent predict` is tested in tests/train/test_trainer.py and tests/inference/test_predict.py.)"""

import pytest

from crosssent.model.backbones import tiny_random_backbone
from crosssent.model.configuration import CrossSentConfig
from crosssent.model.modeling import build_model
from crosssent.scoring import predict


def test_only_audio_and_visual_can_be_hidden():
    model = build_model(CrossSentConfig(audio_dim=4, inject_layer=1, adapter_dim=8), backbone=tiny_random_backbone())
    with pytest.raises(ValueError, match="--hide text: choose from audio, visual"):
        predict(model, [], hide=("text",))
