import io
from pathlib import Path

import numpy as np
import pytest

from crosssent.experiments.config import ExperimentConfig
from crosssent.experiments.report import _comparison_rows, compare, compare_extra, mean_ci, paired_bootstrap, publish

ROOT = Path(__file__).resolve().parents[2]


def test_mean_ci_matches_t_interval():
    s = mean_ci([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(1.0)
    assert s["ci_high"] - 2.0 == pytest.approx(4.302652729911275 / np.sqrt(3))
    assert np.isnan(mean_ci([1.0])["ci_low"])


def test_paired_bootstrap_detects_a_real_difference_and_not_a_fake_one():
    rng = np.random.default_rng(0)
    y = rng.uniform(-3, 3, 200)
    good = [y + rng.normal(0, 0.3, 200) for _ in range(2)]
    bad = [y + rng.normal(0, 1.5, 200) for _ in range(2)]
    strong = paired_bootstrap(y, good, bad, "mosi", ("mae",), samples=200)["mae"]
    assert strong["diff"] < 0 and strong["p"] < 0.05
    same = paired_bootstrap(y, good, good, "mosi", ("mae",), samples=50)["mae"]
    assert same["diff"] == 0.0 and same["p"] == 1.0


def test_publish_replaces_only_its_own_block(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nhand-written intro\n")
    publish("table v1", "exp-a", doc)
    publish("other", "exp-b", doc)
    publish("table v2", "exp-a", doc)
    text = doc.read_text()
    assert "hand-written intro" in text and "table v2" in text and "table v1" not in text and "other" in text


def test_publish_copies_the_linked_figures_beside_the_document(tmp_path):
    experiment, docs = tmp_path / "exp", tmp_path / "docs"
    (experiment / "figures").mkdir(parents=True)
    (experiment / "figures" / "e-d.png").write_bytes(b"png bytes")
    publish("table\n\n![seeds](figures/e-d.png)\n", "e", docs / "results.md", figures_from=experiment)
    assert (docs / "figures" / "e-d.png").read_bytes() == b"png bytes"
    with pytest.raises(ValueError, match="e-x.png: figure linked from the report is missing"):
        publish("![seeds](figures/e-x.png)", "e", docs / "results.md", figures_from=experiment)
    assert "figures/e-x.png" not in (docs / "results.md").read_text()  # nothing published


def test_a_dataset_with_nothing_to_pair_is_left_out_of_the_comparisons(tmp_path):
    config = ExperimentConfig(
        name="lone",
        base=ROOT / "configs" / "synthetic.yaml",
        datasets={"d": ["data.path=x"]},
        variants=["crosssent", "no_gmra"],
        extra_pairs=[("no_gmra", "crosssent")],
    )
    results = {"d": {"crosssent": {"seeds": [0]}}}  # no_gmra has no finished run yet
    assert compare(config, tmp_path, results) == {} and compare_extra(config, tmp_path, results) == {}


def test_an_undefined_paired_t_is_shown_as_a_dash():
    nan = float("nan")
    entry = {
        "mean_diff": {"mae": -0.01, "acc7": 0.02},
        "paired_t_p": {"mae": nan, "acc7": 0.25},
        "bootstrap": {"mae": {"p": 0.5}, "acc7": {"p": 0.04}},
    }
    buf = io.StringIO()
    _comparison_rows(buf, {"no_mpr": entry}, ("acc7", "mae"), "vs")
    assert buf.getvalue().splitlines()[-1] == "| no_mpr | +2.00 (p 0.250 / 0.040) | -0.010 (p – / 0.500) |"


def test_publishing_to_a_folder_writes_a_page_and_regenerates_the_index(tmp_path):
    from crosssent.experiments.report import publish

    experiment = tmp_path / "runs" / "e"
    (experiment / "figures").mkdir(parents=True)
    (experiment / "figures" / "e-d.png").write_bytes(b"png")
    pages = tmp_path / "docs" / "results"
    report = (
        "# Experiment `e`\n\nCommand: `crosssent experiment --config e.yaml`  \n\n"
        "## d (test split)\n\n![seeds](figures/e-d.png)\n"
    )
    publish(report, "e", pages, figures_from=experiment)
    publish(report.replace("`e`", "`f`").replace("## d", "## other"), "f", pages)
    page = (pages / "e.md").read_text()
    assert "](../figures/e-d.png)" in page and (tmp_path / "docs" / "figures" / "e-d.png").read_bytes() == b"png"
    index = (pages / "index.md").read_text()
    assert "| [e](e.md) | test results | d | `crosssent experiment --config e.yaml` |" in index
    assert "| [f](f.md) | test results | other |" in index
    publish("# Probe `p`\n\nCommand: `python scripts/probe.py data`\n\n## Every frame\n\n| a |\n|---|\n| 1 |\n", "p", pages)
    assert "| [p](p.md) | probe | - | `python scripts/probe.py data` |" in (pages / "index.md").read_text()
