"""Figures of a finished run: each kind drawn from a tiny synthetic run, a PNG of the expected
size; what cannot be drawn is one line."""

import matplotlib.image
import pytest

from crosssent.experiments.plots import plot
from crosssent.train.trainer import train_run
from tests.conftest import tiny_settings


@pytest.fixture(scope="module")
def run(tmp_path_factory, synthetic_dir):
    out = tmp_path_factory.mktemp("plots") / "run"
    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 2}), out)
    return out


@pytest.mark.parametrize("kind", ["scatter", "curves"])
def test_every_kind_draws_a_png_a_person_can_open(run, tmp_path, kind):
    path = plot(kind, [run], tmp_path / f"{kind}.png")
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert 900 <= width <= 1400 and 350 <= height <= 700, image.shape
    assert image.std() > 0.05  # not a blank canvas


def test_what_cannot_be_drawn_is_named(run, tmp_path):
    with pytest.raises(ValueError, match="unknown plot 'tsne'; choose from scatter, curves"):
        plot("tsne", [run], tmp_path / "t.png")
    with pytest.raises(ValueError, match="figures are PNG files"):
        plot("scatter", [run], tmp_path / "t.pdf")
    with pytest.raises(ValueError, match="not a finished run"):
        plot("scatter", [tmp_path], tmp_path / "t.png")
    with pytest.raises(ValueError, match="no predictions for the 'train' split"):
        plot("scatter", [run], tmp_path / "t.png", split="train")
