import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from crosssent.experiments import (
    ExperimentConfig, GridIncomplete, compare, compare_extra, grid, load_experiment, mean_ci, paired_bootstrap, run_dir, run_grid,
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
        "extra_pairs": [("no_gmra", "crosssent")],
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
    assert payload["comparisons"]["synthetic"]["no_gmra"]["mean_diff"]["mae"] == pytest.approx(boot["diff"], rel=1e-5)  # predictions file vs float32 metrics
    reverse = payload["extra_comparisons"]["synthetic"]["no_gmra - crosssent"]
    assert reverse["bootstrap"]["mae"]["diff"] == pytest.approx(-boot["diff"])
    assert reverse["paired_t_p"]["mae"] == pytest.approx(payload["comparisons"]["synthetic"]["no_gmra"]["paired_t_p"]["mae"])
    table = (out / "results.md").read_text()
    assert "| crosssent | 2 |" in table and "| no_gmra | 2 |" in table and "Paired comparisons" in table
    assert "| no_gmra - crosssent |" in table
    software = json.loads((run_dir(out, "synthetic", "no_gmra", 1) / "run_info.json").read_text())["software"]
    assert software["torch"] == torch.__version__
    assert "Code the runs were made with: " in table and "(4 runs)." in table  # one code state, four runs
    assert (out / "results.csv").read_text().startswith("dataset,variant,split,metric,n,mean")


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
    bad.write_text("name: x\nbase: b.yaml\ndatasets: {d: []}\nvariants: [crosssent]\nextra_pairs: [[crosssent, mag]]\n")
    with pytest.raises(ValueError, match=r"extra_pairs: \['crosssent', 'mag'\] must name two different variants"):
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


def _fake_run(settings, target, *, resume=False):
    """Stands in for train_run: writes what the reports read, with a validation MAE that
    depends on the settings (so the table can be checked)."""
    from crosssent.settings import dump_settings

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.yaml").write_text(dump_settings(settings))
    score = settings.model.inject_layer / 10 + settings.train.seed / 100
    metrics = {k: score for k in ("acc2_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr")}
    (target / "metrics.json").write_text(json.dumps({"valid": metrics, "test": {k: 9.0 for k in metrics}}))
    (target / "run_info.json").write_text(json.dumps({"best_valid_mse": score, "wall_seconds": 1.0}))


def test_search_grid_reports_validation_only_and_custom_variants(tmp_path):
    config = ExperimentConfig(
        name="search", base=ROOT / "configs" / "synthetic.yaml", datasets={"d": ["data.path=unused"]},
        variants=["crosssent", "inject_1"], seeds=[0, 1], report_test=False,
        custom_variants={"inject_1": ["model.inject_layer=1"]},
    )
    payload = run_grid(config, tmp_path, run_fn=_fake_run, echo=lambda _: None)
    res = payload["results"]["d"]
    base_layer = load_settings(config.base).model.inject_layer
    assert res["inject_1"]["valid"]["mae"]["mean"] == pytest.approx(0.1 + 0.005)
    assert res["crosssent"]["valid"]["mae"]["mean"] == pytest.approx(base_layer / 10 + 0.005)
    assert payload["comparisons"] == {}
    files = [(tmp_path / n).read_text() for n in ("results.md", "results.json", "results.csv")]
    assert all("9.0" not in text for text in files)  # no test number anywhere
    assert "VALIDATION metrics only" in files[0] and "`inject_1` = model.inject_layer=1" in files[0]
    assert ",valid,mae," in files[2]


def test_a_dataset_with_nothing_to_pair_is_left_out_of_the_comparisons(tmp_path):
    config = ExperimentConfig(name="lone", base=ROOT / "configs" / "synthetic.yaml", datasets={"d": ["data.path=x"]},
                              variants=["crosssent", "no_gmra"], extra_pairs=[("no_gmra", "crosssent")])
    results = {"d": {"crosssent": {"seeds": [0]}}}  # no_gmra has no finished run yet
    assert compare(config, tmp_path, results) == {} and compare_extra(config, tmp_path, results) == {}


def test_finished_run_made_with_other_settings_is_refused(tmp_path):
    config = ExperimentConfig(name="e", base=ROOT / "configs" / "synthetic.yaml",
                              datasets={"d": ["data.path=unused"]}, variants=["crosssent"], seeds=[0], report_test=False)
    run_grid(config, tmp_path, run_fn=_fake_run, echo=lambda _: None)
    changed = config.model_copy(update={"overrides": ["model.gate_bias_init=-4"]})
    with pytest.raises(ValueError, match=r"seed0: made with model.gate_bias_init=-2.0 but the experiment now asks for -4"):
        run_grid(changed, tmp_path, run_fn=_fake_run, echo=lambda _: None)
    lines = []
    run_grid(config.model_copy(update={"overrides": ["train.progress_bar=false"]}), tmp_path, run_fn=_fake_run, echo=lines.append)
    assert any("done, skipped" in line for line in lines)  # display-only settings do not count
    # a run made before a setting existed had its default: still the same settings
    saved = run_dir(tmp_path, "d", "crosssent", 0) / "config.yaml"
    tree = yaml.safe_load(saved.read_text())
    del tree["data"]["drop_modalities"]
    saved.write_text(yaml.safe_dump(tree))
    lines = []
    run_grid(config, tmp_path, run_fn=_fake_run, echo=lines.append)
    assert any("done, skipped" in line for line in lines)
    with pytest.raises(ValueError, match=r"made with data.drop_modalities=\[\] but the experiment now asks for \['audio'\]"):
        run_grid(config.model_copy(update={"overrides": ["data.drop_modalities=[audio]"]}), tmp_path,
                 run_fn=_fake_run, echo=lambda _: None)


def test_settings_a_variant_never_reads_do_not_invalidate_its_runs(tmp_path):
    config = ExperimentConfig(name="e", base=ROOT / "configs" / "synthetic.yaml", datasets={"d": ["data.path=unused"]},
                              variants=["no_gmra", "crosssent"], seeds=[0], report_test=False)
    run_grid(config, tmp_path, run_fn=_fake_run, echo=lambda _: None)
    changed = config.model_copy(update={"overrides": ["model.gate_bias_init=-4", "train.lr_fusion=1e-4"], "variants": ["no_gmra"]})
    lines = []
    run_grid(changed, tmp_path, run_fn=_fake_run, echo=lines.append)  # text_only has no gate
    assert any("no_gmra seed 0: done, skipped" in line for line in lines)
    with pytest.raises(ValueError, match="crosssent/seed0: made with model.gate_bias_init"):
        run_grid(changed.model_copy(update={"variants": ["crosssent"]}), tmp_path, run_fn=_fake_run, echo=lambda _: None)


def test_two_processes_share_a_grid_through_run_locks(tmp_path):
    import os
    import subprocess
    import sys

    config = ExperimentConfig(name="e", base=ROOT / "configs" / "synthetic.yaml", datasets={"d": ["data.path=unused"]},
                              variants=["crosssent", "no_gmra"], seeds=[0], report_test=False)
    busy = run_dir(tmp_path, "d", "crosssent", 0)
    busy.mkdir(parents=True)
    (busy / ".lock").write_text(str(os.getpid()))  # a live process is training this cell
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = run_dir(tmp_path, "d", "no_gmra", 0)
    stale.mkdir(parents=True)
    (stale / ".lock").write_text(dead.stdout.strip())  # its owner died
    lines = []
    payload = run_grid(config, tmp_path, run_fn=_fake_run, echo=lines.append)
    assert any("crosssent seed 0: being trained by another process, skipped" in line for line in lines)
    assert not (busy / "metrics.json").exists() and (busy / ".lock").exists()
    assert (stale / "metrics.json").exists() and not (stale / ".lock").exists()
    assert payload["results"]["d"]["no_gmra"]["seeds"] == [0] and "crosssent" not in payload["results"]["d"]
