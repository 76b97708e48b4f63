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


@pytest.fixture(scope="module")
def text_only_run(tmp_path_factory, synthetic_dir):
    out = tmp_path_factory.mktemp("plots") / "text_only"
    train_run(tiny_settings(synthetic_dir, model={"variant": "text_only"}, train={"max_epochs": 1}), out)
    return out


def _opened(path):
    image = matplotlib.image.imread(path)
    assert image.std() > 0.05  # not a blank canvas
    return image.shape[:2]


def test_tsne_draws_two_runs_side_by_side(run, text_only_run, tmp_path):
    height, width = _opened(plot("tsne", [run, text_only_run], tmp_path / "tsne.png"))
    assert 900 <= width <= 1400 and 350 <= height <= 600, (height, width)
    one = _opened(plot("tsne", [run], tmp_path / "one.png", split="valid", seed=3))
    assert one[1] < width - 300  # one panel: a narrower figure


def test_attention_draws_the_chosen_clips(run, tmp_path, synthetic_dir):
    from crosssent.data.dataset import load_dataset

    table, _ = load_dataset(synthetic_dir)
    tests = [c for c, s in zip(table["id"], table["split"]) if s == "test"]
    height, width = _opened(plot("attention", [run], tmp_path / "att.png", clips=tests[3:6], layer=2))
    assert 1300 <= width <= 1700 and 1100 <= height <= 1400, (height, width)  # three clips, three rows
    with pytest.raises(ValueError, match="--layer 9: the encoder has layers 1-2"):
        plot("attention", [run], tmp_path / "a.png", layer=9)
    with pytest.raises(ValueError, match="clip 'nope' is not in the 'test' split"):
        plot("attention", [run], tmp_path / "a.png", clips=["nope"])


def test_what_cannot_be_drawn_is_named(run, text_only_run, tmp_path):
    with pytest.raises(ValueError, match="unknown plot 'pie'; choose from scatter, curves, tsne, attention"):
        plot("pie", [run], tmp_path / "t.png")
    with pytest.raises(ValueError, match="a text_only model has no GMRA attention to draw"):
        plot("attention", [text_only_run], tmp_path / "a.png")
    with pytest.raises(ValueError, match="figures are PNG files"):
        plot("scatter", [run], tmp_path / "t.pdf")
    with pytest.raises(ValueError, match="not a finished run"):
        plot("scatter", [tmp_path], tmp_path / "t.png")
    with pytest.raises(ValueError, match="no predictions for the 'train' split"):
        plot("scatter", [run], tmp_path / "t.png", split="train")
