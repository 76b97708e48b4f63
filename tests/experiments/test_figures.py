import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.image import imread

from crosssent.experiments.figures import draw_seed_figure, figure_name, write_figures
from crosssent.experiments.report import mean_ci

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def per_variant_of(values: dict[str, dict[str, list[float]]], split: str = "test") -> dict:
    """What ``collect`` holds for a dataset: per variant its seeds, values per seed and mean_ci
    (a best validation MSE of 0.5 + seed / 10)."""
    per_variant = {}
    for variant, v in values.items():
        seeds = list(range(len(next(iter(v.values())))))
        mse = [0.5 + s / 10 for s in seeds]
        per_variant[variant] = {
            "seeds": seeds,
            f"{split}_per_seed": v,
            split: {k: mean_ci(x) for k, x in v.items()},
            "valid_mse_per_seed": mse,
            "valid_mse": mean_ci(mse),
        }
    return per_variant


def segments(ax, *, horizontal: bool) -> list:
    """The bars (horizontal) or whiskers (vertical) drawn on a panel, as ((x0, y0), (x1, y1))."""
    lines = [seg for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
    return [seg for seg in lines if (seg[0][1] == seg[1][1]) == horizontal]


def test_every_seed_is_a_dot_and_the_mean_a_bar():
    runs = per_variant_of(
        {
            "crosssent": {"acc7": [0.40, 0.42, 0.47], "mae": [0.80, 0.79, 0.75]},
            "no_gmra": {"acc7": [0.41, 0.45, 0.44], "mae": [0.81, 0.77, 0.78]},
        }
    )
    fig = draw_seed_figure(runs, ("acc7", "mae"), split="test", title="t")
    acc7, mae = fig.axes
    dots = [c.get_offsets() for c in acc7.collections if c.get_offsets().shape[0] == 3]
    np.testing.assert_allclose(dots[0][:, 1], [40, 42, 47])  # accuracies in %, one dot per seed
    np.testing.assert_allclose(dots[1][:, 1], [41, 45, 44])
    assert sorted(np.round(dots[1][:, 0], 2)) == [0.82, 1.0, 1.18]  # the second variant, spread apart
    mae_means = sorted(seg[0][1] for seg in segments(mae, horizontal=True))
    assert mae_means == pytest.approx(sorted([np.mean([0.80, 0.79, 0.75]), np.mean([0.81, 0.77, 0.78])]))
    assert [t.get_text() for t in acc7.get_xticklabels()] == ["crosssent", "no_gmra"]
    whiskers = sorted((seg[0][1], seg[1][1]) for seg in segments(acc7, horizontal=False))
    ci = mean_ci([40.0, 42.0, 47.0])
    assert whiskers[0] == pytest.approx((ci["ci_low"], ci["ci_high"]))
    assert "lower is better" in mae.get_title() and "(%)" in acc7.get_title() and "(%)" not in mae.get_title()


@pytest.mark.parametrize(
    ("names", "slanted"),
    [
        (["crosssent", "no_gmra"], False),
        (["crosssent", "no_gmra", "mag"], False),
        (["crosssent", "no_gmra", "crosssent_fusion_1e-4"], True),  # short list, one name too wide for its slot
        (["a", "b", "c", "d"], True),
    ],
)
def test_variant_names_are_slanted_when_they_would_overlap(names, slanted):
    runs = per_variant_of({name: {"corr": [0.5, 0.6]} for name in names})
    ticks = draw_seed_figure(runs, ("corr",), split="test", title="t").axes[0].get_xticklabels()
    assert [t.get_text() for t in ticks] == names
    assert {t.get_rotation() for t in ticks} == {40.0 if slanted else 0.0}


def test_two_seeds_have_no_whisker_and_figures_are_pngs_that_redraw_the_same(tmp_path):
    runs = per_variant_of({"crosssent": {"corr": [0.7, 0.6]}}, split="valid")
    fig = draw_seed_figure(runs, ("corr", "valid_mse"), split="valid", title="t")
    assert segments(fig.axes[0], horizontal=False) == []  # a t interval from two seeds is not drawn
    assert len(segments(fig.axes[0], horizontal=True)) == 1
    selection = fig.axes[1]
    np.testing.assert_allclose(selection.collections[0].get_offsets()[:, 1], [0.5, 0.6])
    assert selection.get_title() == "validation MSE (selects the model), lower is better"
    written = write_figures("exp", tmp_path, {"d": runs, "empty": {}}, split="valid", keys={"d": ("corr",)}, quoted={})
    assert written == [figure_name("exp", "d")] == ["figures/exp-d.png"]
    data = (tmp_path / written[0]).read_bytes()
    assert data.startswith(PNG_SIGNATURE) and imread(tmp_path / written[0]).shape[2] in (3, 4)
    write_figures("exp", tmp_path, {"d": runs}, split="valid", keys={"d": ("corr",)}, quoted={})
    assert (tmp_path / written[0]).read_bytes() == data  # no time stamp: same grid, same bytes


def test_quoted_numbers_are_dashed_labelled_lines_on_their_panels():
    runs = per_variant_of({"crosssent": {"acc2": [0.73, 0.74, 0.72], "corr": [0.50, 0.51, 0.49]}})
    quoted = {"floor": {"corr": 0.529}, "paper": {"acc2": 0.8041, "corr": 0.622}}
    fig = draw_seed_figure(runs, ("acc2", "corr"), split="test", title="t", quoted=quoted)
    acc2, corr = fig.axes
    dashed = {
        ax: {line.get_label(): line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"}
        for ax in (acc2, corr)
    }
    assert dashed[acc2] == {"paper (quoted)": pytest.approx(80.41)}  # in %, like the dots
    assert dashed[corr] == {"floor (quoted)": pytest.approx(0.529), "paper (quoted)": pytest.approx(0.622)}
    assert [a.get_legend() for a in fig.axes] == [None, None] and len(fig.legends) == 1  # one, below the panels
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["paper (quoted)", "floor (quoted)"]
