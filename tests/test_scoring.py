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


def test_transfer_leaves_missing_streams_empty_and_maps_the_label_scale(tmp_path, synthetic_dir):
    """A model trained on MOSI-scale data with audio and visual, scored on text-only data on
    CH-SIMS's [-1, 1] scale: the streams are left empty, predictions divided by 3, SIMS metrics."""
    import numpy as np
    from typer.testing import CliRunner

    from crosssent.cli import app
    from crosssent.scoring import evaluate_folder, label_scale
    from crosssent.train.trainer import train_run
    from tests.conftest import sims_scale_copy, tiny_settings

    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1}), tmp_path / "run")
    other = sims_scale_copy(synthetic_dir, tmp_path / "sims")
    model = tmp_path / "run" / "model"
    refused = CliRunner().invoke(app, ["evaluate", "--model", str(model), "--data", str(other)])
    assert refused.exit_code == 2 and "audio_dim=0 but the model was trained with audio_dim=8" in refused.output
    metrics, rows = evaluate_folder(model, other, ("test",), transfer=True)
    assert "acc5" in metrics["test"]  # CH-SIMS's conventions, not MOSI's
    # the same clips' text-only predictions on the model's own scale, divided by 3
    _, own_rows = evaluate_folder(model, synthetic_dir, ("test",), hide=("audio", "visual"))
    np.testing.assert_allclose([r[3] for r in rows], [r[3] / 3 for r in own_rows], atol=1e-5)
    assert label_scale(-1, 1, -3, 3) == 3 and label_scale(-3, 3, -3, 3) == 1
    done = CliRunner().invoke(
        app, ["evaluate", "--model", str(model), "--data", str(other), "--transfer", "--out", str(tmp_path / "ev")]
    )
    assert done.exit_code == 0, done.output
