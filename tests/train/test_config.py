from pathlib import Path

import pytest
from pydantic import ValidationError

from crosssent.train.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")))
def test_every_shipped_config_validates_and_starts_with_its_command(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# crosssent "), f"{path.name} must start with the command that runs it"
    if "experiments" in path.parts:
        from crosssent.experiments.config import load_experiment

        assert load_experiment(path).base.is_file() or (ROOT / load_experiment(path).base).is_file()
    elif "summaries" in path.parts:
        from crosssent.experiments.summary import load_summary

        load_summary(path)
    else:
        load_settings(path)


def test_overrides_are_typed_and_nested(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: d}\nmodel: {inject_layer: 3}\n")
    s = load_settings(cfg, ["model.inject_layer=2", "train.max_epochs=3", "objective.lambda_mpr=0"])
    assert s.model.inject_layer == 2 and s.train.max_epochs == 3 and s.objective.lambda_mpr == 0.0
    with pytest.raises(ValidationError):
        s.model.inject_layer = 5  # frozen: nothing downstream mutates the config


def test_dims_checked_against_data_not_written():
    from crosssent.train.config import ModelSettings

    m = ModelSettings(audio_dim=73)
    assert m.to_model_config(audio_dim=73, visual_dim=0, source="d").audio_dim == 73
    with pytest.raises(ValueError, match="model.audio_dim=73 in the config but d has audio_dim=5"):
        m.to_model_config(audio_dim=5, visual_dim=0, source="d")


@pytest.mark.parametrize(
    "text,override,message",
    [
        ("data: {path: d}\n", ["nonsense"], "expected SECTION.KEY=VALUE"),
        ("data: [1, 2\n", [], "not valid YAML"),
        ("model: {}\n", [], "data: Field required"),
        ("data: {path: d}\ntrain: {max_epochs: 0}\n", [], "train.max_epochs"),
    ],
)
def test_bad_configs(tmp_path, text, override, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_settings(cfg, override)


def test_mpnet_training_config_is_the_published_mpnet_grid():
    """configs/mosi-mpnet.yaml must train what the MOSI mpnet row of docs/results.md measured."""
    from crosssent.experiments.config import cell_settings, load_experiment

    grid = load_experiment(ROOT / "configs" / "experiments" / "mosi-mpnet-epochs-8.yaml")
    published = cell_settings(grid, "mosi-clip", "crosssent", 0)
    assert load_settings(ROOT / "configs" / "mosi-mpnet.yaml", ["train.progress_bar=false"]) == published
