import csv
import json
import shutil
from pathlib import Path

import pytest

from crosssent.experiments.config import ExperimentConfig, run_dir
from crosssent.experiments.records import read_record, record_path, restore_run
from crosssent.experiments.runner import run_grid, sync_records
from crosssent.train.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.backbone=tiny-random", "model.inject_layer=1", "data.max_len=24", "train.max_epochs=1", "train.progress_bar=false"]


def _never(*args, **kwargs):
    raise AssertionError("a recorded run was trained again")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, synthetic_dir):
    """A tiny real grid (2 variants x 1 seed) with records, and its reports."""
    root = tmp_path_factory.mktemp("recorded")
    config = ExperimentConfig(
        name="rec",
        base=ROOT / "configs" / "synthetic.yaml",
        datasets={"synthetic": [f"data.path={synthetic_dir}"]},
        variants=["crosssent", "no_gmra"],
        seeds=[0],
        overrides=TINY,
        bootstrap=50,
        records=root / "records",
    )
    payload = run_grid(config, root / "exp", echo=lambda _: None)
    return config, root, payload


def test_a_fresh_checkout_restores_recorded_runs_instead_of_training_them(recorded):
    config, root, payload = recorded
    fresh = root / "fresh"
    lines = []
    again = run_grid(config, fresh, run_fn=_never, echo=lines.append)
    assert sum("restored from" in line for line in lines) == 2

    def same(key):  # NaN-safe
        return json.dumps(again[key], sort_keys=True) == json.dumps(payload[key], sort_keys=True)

    assert same("results") and same("extra_comparisons")
    assert same("comparisons") and "bootstrap" in again["comparisons"]["synthetic"]["no_gmra"]  # labels joined back exactly
    restored = run_dir(fresh, "synthetic", "crosssent", 0)
    assert (restored / "record.json").exists() and not (restored / "model").exists()
    lines = []
    run_grid(config, fresh, run_fn=_never, echo=lines.append)
    assert all("done, skipped" in line for line in lines)


def test_report_only_restores_too(recorded):
    config, root, payload = recorded
    out = root / "report-only"
    assert sync_records(config, out) == 2
    assert sync_records(config, out) == 0


def test_a_record_holds_predictions_and_no_labels(recorded, synthetic_dir):
    config, root, _ = recorded
    record = read_record(record_path(config.records, "synthetic", "no_gmra", 0))
    assert set(record) == {"format", "settings", "task", "metrics", "run_info", "test_predictions"}
    with (run_dir(root / "exp", "synthetic", "no_gmra", 0) / "predictions.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "test"]
    assert record["test_predictions"] == {r["id"]: float(r["prediction"]) for r in rows}
    assert all(isinstance(v, float) for v in record["test_predictions"].values())
    assert "label" not in json.dumps(record["test_predictions"]) and record["task"] == "mosi"


def test_a_record_of_other_settings_or_other_clips_is_refused(recorded, tmp_path, synthetic_dir):
    config, root, _ = recorded
    path = record_path(config.records, "synthetic", "crosssent", 0)
    base = [*TINY, f"data.path={synthetic_dir}", "train.seed=0"]
    with pytest.raises(ValueError, match=r"seed0.json: made with model.gate_bias_init=.* but the experiment now asks for -4"):
        restore_run(path, tmp_path / "a", load_settings(config.base, [*base, "model.gate_bias_init=-4"]))
    record = json.loads(path.read_text())
    record["test_predictions"]["not-a-clip"] = 0.5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"bad.json: clip 'not-a-clip' is not in the test split"):
        restore_run(bad, tmp_path / "b", load_settings(config.base, base))
    assert not (tmp_path / "b" / "metrics.json").exists()
    bad.write_text("{}")
    with pytest.raises(ValueError, match=r"bad.json: not a run record"):
        restore_run(bad, tmp_path / "c", load_settings(config.base, base))


def test_a_run_finished_before_records_existed_gets_one(recorded, tmp_path):
    config, root, _ = recorded
    shutil.copytree(root / "exp", tmp_path / "exp")
    later = config.model_copy(update={"records": tmp_path / "records"})
    run_grid(later, tmp_path / "exp", run_fn=_never, echo=lambda _: None)
    assert record_path(later.records, "synthetic", "crosssent", 0).exists()
    assert read_record(record_path(later.records, "synthetic", "crosssent", 0)) == read_record(
        record_path(config.records, "synthetic", "crosssent", 0)
    )


def test_the_cli_report_only_rebuilds_a_table_from_records(recorded, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from crosssent.cli import app

    config, root, _ = recorded
    path = tmp_path / "rec.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["experiment", "--config", str(path), "--out", str(tmp_path / "out"), "--report-only"])
    assert result.exit_code == 0, result.output
    assert "restored 2 run(s)" in result.output and "| no_gmra | 1 |" in result.output


def test_a_search_grid_records_and_restores_no_test_number(recorded, tmp_path):
    config, root, _ = recorded
    shutil.copytree(root / "exp", tmp_path / "exp")
    search = config.model_copy(update={"records": tmp_path / "records", "report_test": False})
    first = run_grid(search, tmp_path / "exp", run_fn=_never, echo=lambda _: None)
    path = record_path(search.records, "synthetic", "crosssent", 0)
    record = read_record(path)
    assert record["test_predictions"] is None and set(record["metrics"]) == {"valid"}
    assert "fusion" not in record["run_info"] and '"test"' not in path.read_text()
    again = run_grid(search, tmp_path / "fresh", run_fn=_never, echo=lambda _: None)
    assert json.dumps(again["results"], sort_keys=True) == json.dumps(first["results"], sort_keys=True)
    assert set(again["results"]["synthetic"]["crosssent"]) == {
        "seeds",
        "missing_seeds",
        "valid",
        "valid_per_seed",
        "valid_mse",
        "valid_mse_per_seed",
        "wall_seconds",
        "partial_time_runs",
        "code",
    }
    with pytest.raises(ValueError, match=r"seed0.json: a search record \(no test numbers\)"):
        run_grid(
            config.model_copy(update={"records": search.records}), tmp_path / "test-grid", run_fn=_never, echo=lambda _: None
        )


def test_a_search_borrows_its_base_point_from_a_grid_without_its_test_numbers(recorded, tmp_path):
    config, root, _ = recorded
    search = config.model_copy(
        update={
            "records": tmp_path / "records",
            "report_test": False,
            "variants": ["crosssent"],
            "borrowed_records": {"crosssent": config.records},
        }
    )
    lines = []
    run_grid(search, tmp_path / "exp", run_fn=_never, echo=lines.append)
    assert any("restored from" in line for line in lines)
    source = read_record(record_path(config.records, "synthetic", "crosssent", 0))
    copy = read_record(record_path(search.records, "synthetic", "crosssent", 0))
    assert copy["test_predictions"] is None and set(copy["metrics"]) == {"valid"} and "fusion" not in copy["run_info"]
    assert copy["metrics"]["valid"] == source["metrics"]["valid"] and copy["settings"] == source["settings"]


def test_a_borrowed_record_of_other_settings_is_refused_and_nothing_is_copied(recorded, tmp_path):
    config, root, _ = recorded
    other = config.model_copy(
        update={
            "records": tmp_path / "records",
            "variants": ["crosssent"],
            "overrides": [*TINY, "model.gate_bias_init=-4"],
            "borrowed_records": {"crosssent": config.records},
        }
    )
    with pytest.raises(ValueError, match=r"seed0.json: made with model.gate_bias_init=.* it cannot stand for"):
        run_grid(other, tmp_path / "exp", run_fn=_never, echo=lambda _: None)
    assert not (tmp_path / "records").exists()
