import json
from pathlib import Path

import numpy as np
import pytest

from crosssent.experiments import (
    ExperimentConfig, GridIncomplete, grid, load_experiment, mean_ci, paired_bootstrap, run_dir, run_grid,
)
from crosssent.settings import load_settings
from crosssent.training import RunInterrupted, train_run

ROOT = Path(__file__).resolve().parents[1]


def tiny_experiment(data_dir):
    shipped = load_experiment(ROOT / "configs" / "experiments" / "synthetic-tiny.yaml")
    return shipped.model_copy(update={
        "base": ROOT / "configs" / "synthetic.yaml",
        "datasets": {"synthetic": [f"data.path={data_dir}"]},
        "bootstrap": 50,
    })


def test_grid_runs_interrupts_and_resumes(tmp_path, synthetic_dir):
    config = tiny_experiment(synthetic_dir)
    assert grid(config) == [("synthetic", "crosssent", 0), ("synthetic", "no_gmra", 0),
                            ("synthetic", "crosssent", 1), ("synthetic", "no_gmra", 1)]
    out = tmp_path / "exp"
    with pytest.raises(GridIncomplete, match="stopped after 1 new run"):
        run_grid(config, out, max_runs=1, echo=lambda _: None)
    first = run_dir(out, "synthetic", "crosssent", 0) / "metrics.json"
    stamp = first.stat().st_mtime_ns
    partial = json.loads((out / "results.json").read_text())
    assert partial["results"]["synthetic"]["crosssent"]["seeds"] == [0]
    # the second cell dies mid-run (as if killed)
    settings = load_settings(config.base, [*config.overrides, *config.datasets["synthetic"],
                                           "model.variant=text_only", "train.seed=0", "train.interrupt_after_epochs=1"])
    with pytest.raises(RunInterrupted):
        train_run(settings, run_dir(out, "synthetic", "no_gmra", 0))
    lines = []
    payload = run_grid(config, out, echo=lines.append)
    assert any("no_gmra seed 0: resuming" in l for l in lines)
    assert any("crosssent seed 0: done, skipped" in l for l in lines)
    assert first.stat().st_mtime_ns == stamp
    res = payload["results"]["synthetic"]
    assert res["crosssent"]["test"]["mae"]["n"] == 2 and res["no_gmra"]["seeds"] == [0, 1]
    boot = payload["comparisons"]["synthetic"]["no_gmra"]["bootstrap"]["mae"]
    assert 0 < boot["p"] <= 1 and boot["ci_low"] <= boot["diff"] <= boot["ci_high"]
    table = (out / "results.md").read_text()
    assert "| crosssent | 2 |" in table and "| no_gmra | 2 |" in table and "Paired comparisons" in table
    assert (out / "results.csv").read_text().startswith("dataset,variant,metric,n,mean")


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


def test_bad_experiment_configs(tmp_path):
    bad = tmp_path / "e.yaml"
    bad.write_text("name: x\nbase: b.yaml\ndatasets: {d: []}\nvariants: [crosssent, bigger]\n")
    with pytest.raises(ValueError, match="unknown variant 'bigger'"):
        load_experiment(bad)
    with pytest.raises(ValueError, match="experiment config not found"):
        load_experiment(tmp_path / "none.yaml")


def test_seed_overrides_shorten_one_variant():
    config = ExperimentConfig(name="x", base=Path("b"), datasets={"d": []}, variants=["crosssent", "no_mpr"],
                              seeds=[0, 1, 2], seed_overrides={"no_mpr": [0]})
    assert [c for c in grid(config) if c[1] == "no_mpr"] == [("d", "no_mpr", 0)]
    assert len(grid(config)) == 4


def test_publish_replaces_only_its_own_block(tmp_path):
    from crosssent.experiments import publish

    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nhand-written intro\n")
    publish("table v1", "exp-a", doc)
    publish("other", "exp-b", doc)
    publish("table v2", "exp-a", doc)
    text = doc.read_text()
    assert "hand-written intro" in text and "table v2" in text and "table v1" not in text and "other" in text
