import json
from pathlib import Path

import pytest
import torch
import yaml

from crosssent.experiments.config import ExperimentConfig, TransferSettings, grid, load_experiment, run_dir
from crosssent.experiments.report import write_reports
from crosssent.experiments.runner import GridIncomplete, run_grid
from crosssent.train.config import load_settings
from crosssent.train.trainer import RunInterrupted, train_run

ROOT = Path(__file__).resolve().parents[2]


def tiny_experiment(data_dir):
    shipped = load_experiment(ROOT / "configs" / "experiments" / "synthetic-tiny.yaml")
    return shipped.model_copy(
        update={
            "base": ROOT / "configs" / "synthetic.yaml",
            "datasets": {"synthetic": [f"data.path={data_dir}"]},
            "bootstrap": 50,
            "extra_pairs": [("no_gmra", "crosssent")],
        }
    )


def _grid(variants: list[str], **fields) -> ExperimentConfig:
    """A one-dataset grid on the synthetic config, validation only (its runs are faked)."""
    return ExperimentConfig(
        **{
            "name": "e",
            "base": ROOT / "configs" / "synthetic.yaml",
            "datasets": {"d": ["data.path=unused"]},
            "variants": variants,
            "report_test": False,
            **fields,
        }
    )


def test_grid_runs_interrupts_and_resumes(tmp_path, synthetic_dir):
    config = tiny_experiment(synthetic_dir)
    assert grid(config) == [
        ("synthetic", "crosssent", 0),
        ("synthetic", "no_gmra", 0),
        ("synthetic", "crosssent", 1),
        ("synthetic", "no_gmra", 1),
    ]
    out = tmp_path / "exp"
    with pytest.raises(GridIncomplete, match="stopped after 1 new run"):
        run_grid(config, out, max_runs=1, echo=lambda _: None)
    first = run_dir(out, "synthetic", "crosssent", 0) / "metrics.json"
    stamp = first.stat().st_mtime_ns
    partial = json.loads((out / "results.json").read_text())
    assert partial["results"]["synthetic"]["crosssent"]["seeds"] == [0]
    # the second cell dies mid-run (as if killed)
    settings = load_settings(
        config.base,
        [
            *config.overrides,
            *config.datasets["synthetic"],
            "model.variant=text_only",
            "train.seed=0",
            "train.interrupt_after_epochs=1",
        ],
    )
    with pytest.raises(RunInterrupted):
        train_run(settings, run_dir(out, "synthetic", "no_gmra", 0))
    lines = []
    payload = run_grid(config, out, echo=lines.append)
    assert any("no_gmra seed 0: resuming" in line for line in lines)
    assert any("crosssent seed 0: done, skipped" in line for line in lines)
    assert first.stat().st_mtime_ns == stamp
    res = payload["results"]["synthetic"]
    assert res["crosssent"]["test"]["mae"]["n"] == 2 and res["no_gmra"]["seeds"] == [0, 1]
    boot = payload["comparisons"]["synthetic"]["no_gmra"]["bootstrap"]["mae"]
    assert 0 < boot["p"] <= 1 and boot["ci_low"] <= boot["diff"] <= boot["ci_high"]
    mean_diff = payload["comparisons"]["synthetic"]["no_gmra"]["mean_diff"]["mae"]
    assert mean_diff == pytest.approx(boot["diff"], rel=1e-5)  # predictions file vs float32 metrics
    reverse = payload["extra_comparisons"]["synthetic"]["no_gmra - crosssent"]
    assert reverse["bootstrap"]["mae"]["diff"] == pytest.approx(-boot["diff"])
    assert reverse["paired_t_p"]["mae"] == pytest.approx(payload["comparisons"]["synthetic"]["no_gmra"]["paired_t_p"]["mae"])
    table = (out / "results.md").read_text()
    assert "| crosssent | 2 |" in table and "| no_gmra | 2 |" in table and "Paired comparisons" in table
    assert "| no_gmra - crosssent |" in table
    resumed_info = run_dir(out, "synthetic", "no_gmra", 0) / "run_info.json"
    assert json.loads(resumed_info.read_text())["wall_seconds_before_resume"] > 0  # whole wall time
    assert "count only their last part" not in table and res["no_gmra"]["partial_time_runs"] == 0
    software = json.loads((run_dir(out, "synthetic", "no_gmra", 1) / "run_info.json").read_text())["software"]
    assert software["torch"] == torch.__version__
    assert "Code the runs were made with: " in table and "(4 runs)." in table  # one code state, four runs
    assert (out / "results.csv").read_text().startswith("dataset,variant,split,metric,n,mean")
    figure = f"figures/{config.name}-synthetic.png"  # every seed of both variants, linked from the table
    assert f"]({figure})" in table and (out / figure).read_bytes().startswith(b"\x89PNG")
    # a run resumed by an older version (no carried clock) is flagged: its wall time is partial
    old_style = {k: v for k, v in json.loads(resumed_info.read_text()).items() if k != "wall_seconds_before_resume"}
    resumed_info.write_text(json.dumps(old_style))
    again = write_reports(config, out, wall_seconds=0.0)
    assert again["results"]["synthetic"]["no_gmra"]["partial_time_runs"] == 1
    assert "(1 run(s) resumed by an older version count only their last part)" in (out / "results.md").read_text()


def _fake_run(settings, target, *, resume=False):
    """Stands in for train_run: writes what the reports read, with a validation MAE that
    depends on the settings (so the table can be checked)."""
    from crosssent.train.config import dump_settings

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.yaml").write_text(dump_settings(settings))
    score = settings.model.inject_layer / 10 + settings.train.seed / 100
    metrics = {k: score for k in ("acc2_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr")}
    (target / "metrics.json").write_text(json.dumps({"valid": metrics, "test": {k: 9.0 for k in metrics}}))
    (target / "run_info.json").write_text(json.dumps({"best_valid_mse": score, "wall_seconds": 1.0}))


def test_search_grid_reports_validation_only_and_custom_variants(tmp_path):
    config = _grid(
        ["crosssent", "inject_1"],
        seeds=[0, 1],
        name="search",
        custom_variants={"inject_1": ["model.inject_layer=1"]},
        quoted={"d": {"a floor": {"mae": 0.5, "acc7": 0.4}}},
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
    assert "\nDashed line, quoted (not ours): a floor: mae 0.500, acc7 40.00.\n" in files[0]
    assert (tmp_path / "figures" / "search-d.png").exists()


def test_a_variant_with_no_finished_run_is_named_in_the_report(tmp_path):
    config = _grid(
        ["crosssent", "inject_1", "inject_2"],
        seeds=[0, 1],
        name="partial",
        custom_variants={"inject_1": ["model.inject_layer=1"], "inject_2": ["model.inject_layer=2"]},
    )
    with pytest.raises(GridIncomplete):  # stops after seed 0 of the first two variants
        run_grid(config, tmp_path, max_runs=2, run_fn=_fake_run, echo=lambda _: None)
    report = (tmp_path / "results.md").read_text()
    assert "| inject_1 | 1 (missing [1]) |" in report
    assert "\nNo finished run yet: `inject_2` (seeds [0, 1])\n" in report


def test_finished_run_made_with_other_settings_is_refused(tmp_path):
    config = _grid(["crosssent"], seeds=[0])
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
        run_grid(
            config.model_copy(update={"overrides": ["data.drop_modalities=[audio]"]}),
            tmp_path,
            run_fn=_fake_run,
            echo=lambda _: None,
        )


def test_settings_a_variant_never_reads_do_not_invalidate_its_runs(tmp_path):
    config = _grid(["no_gmra", "crosssent"], seeds=[0])
    run_grid(config, tmp_path, run_fn=_fake_run, echo=lambda _: None)
    overrides = ["model.gate_bias_init=-4", "train.lr_fusion=1e-4"]
    changed = config.model_copy(update={"overrides": overrides, "variants": ["no_gmra"]})
    lines = []
    run_grid(changed, tmp_path, run_fn=_fake_run, echo=lines.append)  # text_only has no gate
    assert any("no_gmra seed 0: done, skipped" in line for line in lines)
    with pytest.raises(ValueError, match="crosssent/seed0: made with model.gate_bias_init"):
        run_grid(changed.model_copy(update={"variants": ["crosssent"]}), tmp_path, run_fn=_fake_run, echo=lambda _: None)


def test_two_processes_share_a_grid_through_run_locks(tmp_path):
    import os
    import subprocess
    import sys

    config = _grid(["crosssent", "no_gmra"], seeds=[0])
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


def test_a_lock_whose_pid_now_names_another_process_is_stale(tmp_path):
    import json
    import os
    import socket

    from crosssent.experiments.runner import _lock_is_live, _lock_owner

    config = _grid(["crosssent"], seeds=[0])
    ours = _lock_owner()
    assert _lock_is_live(json.dumps(ours))  # this very process
    reused = dict(ours, started="999999999999")  # same PID, another process start
    assert not _lock_is_live(json.dumps(reused))
    assert _lock_is_live(json.dumps(dict(ours, host=socket.gethostname() + "-elsewhere")))  # unknowable: kept
    target = run_dir(tmp_path, "d", "crosssent", 0)
    target.mkdir(parents=True)
    (target / ".lock").write_text(json.dumps(dict(reused, pid=os.getppid())))  # a live, unrelated process
    lines = []
    run_grid(config, tmp_path, run_fn=_fake_run, echo=lines.append)
    assert (target / "metrics.json").exists() and not (target / ".lock").exists(), lines


def test_the_transfer_stage_scores_each_run_on_the_other_corpora_once_and_records_it(tmp_path, synthetic_dir):
    from crosssent.scoring import evaluate_folder
    from tests.conftest import sims_scale_copy

    sims = sims_scale_copy(synthetic_dir, tmp_path / "sims-scale")
    other = sims_scale_copy(synthetic_dir, tmp_path / "held-out")
    config = tiny_experiment(synthetic_dir).model_copy(
        update={
            "datasets": {"synthetic": [f"data.path={synthetic_dir}"], "sims-scale": [f"data.path={sims}"]},
            "variants": ["crosssent"],
            "seeds": [0],
            "extra_pairs": [],
            "records": tmp_path / "records",
            "transfer": TransferSettings(variants=["crosssent"], datasets={"held-out": other}),
        }
    )
    out = tmp_path / "exp"
    with pytest.raises(GridIncomplete):  # a partial grid scores its finished runs already
        run_grid(config, out, max_runs=1, echo=lambda _: None)
    partial = json.loads((out / "results.json").read_text())["transfer"]["rows"]
    assert list(partial) == ["synthetic (crosssent)"] and len(partial["synthetic (crosssent)"]) == 3
    said: list[str] = []
    payload = run_grid(config, out, echo=said.append)
    run = run_dir(out, "synthetic", "crosssent", 0)
    scores = json.loads((run / "transfer.json").read_text())
    assert list(scores) == ["sims-scale", "held-out"]
    expected, _ = evaluate_folder(run / "model", sims, ("test",), transfer=True)
    assert scores["sims-scale"]["metrics"] == pytest.approx(expected["test"])
    rows = payload["transfer"]["rows"]
    assert payload["transfer"]["columns"] == ["synthetic", "sims-scale", "held-out"]
    own = json.loads((run / "metrics.json").read_text())["test"]["corr"]
    assert rows["synthetic (crosssent)"]["synthetic"]["corr"]["mean"] == pytest.approx(own)
    assert rows["synthetic (crosssent)"]["sims-scale"]["corr"]["mean"] == pytest.approx(expected["test"]["corr"])
    assert "acc2" in rows["synthetic (crosssent)"]["sims-scale"] and "acc2_non0" in rows["sims-scale (crosssent)"]["synthetic"]
    assert "## Transfer (test splits)" in (out / "results.md").read_text()
    assert sum("transfer:" in line for line in said) == 2  # the second run's two other corpora (the first's were scored)
    # a second pass scores nothing again; a fresh checkout rebuilds the table from the records alone
    said.clear()
    run_grid(config, out, echo=said.append)
    assert not any("transfer:" in line for line in said)
    record = json.loads((tmp_path / "records" / "synthetic" / "crosssent" / "seed0.json").read_text())
    assert record["transfer"]["held-out"]["metrics"] == pytest.approx(scores["held-out"]["metrics"])
    again = run_grid(config, tmp_path / "fresh", echo=lambda _: None, run_fn=lambda *a, **k: pytest.fail("trained again"))
    means = lambda rows: {(r, c): cell["corr"]["mean"] for r, cells in rows.items() for c, cell in cells.items()}  # noqa: E731
    assert means(again["transfer"]["rows"]) == pytest.approx(means(rows)) and len(means(rows)) == 6


def test_a_transfer_stage_needs_the_grids_variants_and_test_numbers(tmp_path):
    path = tmp_path / "t.yaml"
    base = str(ROOT / "configs" / "synthetic.yaml")
    tree = {"name": "t", "base": base, "datasets": {"d": ["data.path=x"]}, "variants": ["crosssent"]}
    path.write_text(yaml.safe_dump({**tree, "transfer": {"variants": ["mag"]}}))
    with pytest.raises(ValueError, match="transfer: variant 'mag' is not a variant of this experiment"):
        load_experiment(path)
    path.write_text(yaml.safe_dump({**tree, "report_test": False, "transfer": {}}))
    with pytest.raises(ValueError, match="which a search .* must not see"):
        load_experiment(path)
    path.write_text(yaml.safe_dump({**tree, "transfer": {"datasets": {"d": "y"}}}))
    with pytest.raises(ValueError, match="'d' is already a dataset of the grid"):
        load_experiment(path)
