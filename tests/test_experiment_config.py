from pathlib import Path

import pytest

from crosssent.experiment_config import ExperimentConfig, cell_settings, grid, load_experiment
from crosssent.records import read_record, record_path
from crosssent.settings import first_difference


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


ROOT = Path(__file__).resolve().parents[1]
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
            difference = first_difference(read_record(record)["settings"], cells[cell])
            assert difference is None, f"{record}: {difference}"
