from pathlib import Path

import pytest

from crosssent.experiments.config import ExperimentConfig, cell_settings, grid, load_experiment
from crosssent.experiments.records import read_record, record_path
from crosssent.train.config import first_difference


@pytest.mark.parametrize(
    "rest, message",
    [
        ("variants: [crosssent, bigger]", "unknown variant 'bigger'"),
        (
            "variants: [crosssent]\nextra_pairs: [[crosssent, mag]]",
            r"extra_pairs: \['crosssent', 'mag'\] must name two different variants",
        ),
        (
            "variants: [crosssent]\nrecords: r\nborrowed_records: {mag: other}",
            r"borrowed_records: 'mag' needs to be a variant of this experiment",
        ),
        ("quoted: {e: {floor: {mae: 0.5}}}", r"quoted: 'e' is not a dataset of this experiment"),
        ("quoted: {d: {floor: {acc8: 0.5}}}", r"quoted: d: floor: unknown metric 'acc8'"),
    ],
)
def test_bad_experiment_configs(tmp_path, rest, message):
    bad = tmp_path / "e.yaml"
    bad.write_text(f"name: x\nbase: b.yaml\ndatasets: {{d: []}}\n{rest}\n")
    with pytest.raises(ValueError, match=f"e.yaml: {message}"):
        load_experiment(bad)


def test_a_missing_experiment_config_is_named(tmp_path):
    with pytest.raises(ValueError, match="none.yaml: experiment config not found"):
        load_experiment(tmp_path / "none.yaml")


def test_seed_overrides_shorten_one_variant():
    config = ExperimentConfig(
        name="x",
        base=Path("b"),
        datasets={"d": []},
        variants=["crosssent", "no_mpr"],
        seeds=[0, 1, 2],
        seed_overrides={"no_mpr": [0]},
    )
    assert [c for c in grid(config) if c[1] == "no_mpr"] == [("d", "no_mpr", 0)]
    assert len(grid(config)) == 4


ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "configs" / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_grids_still_ask_for_the_runs_their_records_hold(path, monkeypatch):
    """Changing a default in a base config must not silently change an older grid: each grid's
    committed records were made with exactly the settings its cells resolve to now (a grid made
    under an old default pins it, e.g. ``train.lr_fusion=null``). Every cell must also resolve."""
    monkeypatch.chdir(ROOT)  # base paths in the configs are relative to the repository root
    config = load_experiment(path)
    cells = {cell: cell_settings(config, *cell) for cell in grid(config)}
    if config.records is None:
        return
    by_path = {record_path(ROOT / config.records, *cell): cell for cell in cells}
    stray = sorted(set((ROOT / config.records).glob("*/*/seed*.json")) - set(by_path))
    assert not stray, f"{stray[0]}: not a cell of {path.name}"
    for record, cell in by_path.items():
        if record.exists():
            kept = read_record(record)
            difference = first_difference(kept["settings"], cells[cell])
            assert difference is None, f"{record}: {difference}"
            if not config.report_test:  # a search's record keeps no test number
                assert kept["test_predictions"] is None and "test" not in kept["metrics"], record


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_borrowed_records_are_copies_of_their_source(path, monkeypatch):
    """A record a grid borrowed from another grid is that grid's record (test numbers left out
    for a search), so the two grids report the same run."""
    monkeypatch.chdir(ROOT)
    config = load_experiment(path)
    for dataset, variant, seed in grid(config):
        if variant not in config.borrowed_records:
            continue
        own, source = (record_path(ROOT / r, dataset, variant, seed) for r in (config.records, config.borrowed_records[variant]))
        if own.exists() and source.exists():  # a cell the source grid lacks was trained here
            mine, theirs = read_record(own), read_record(source)
            assert mine["metrics"]["valid"] == theirs["metrics"]["valid"], own
            assert mine["run_info"]["best_valid_mse"] == theirs["run_info"]["best_valid_mse"], own
            assert config.report_test or mine["test_predictions"] is None, own
