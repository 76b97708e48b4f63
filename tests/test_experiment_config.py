from pathlib import Path

import pytest

from crosssent.experiment_config import ExperimentConfig, grid, load_experiment


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
