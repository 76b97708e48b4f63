"""The run folder: prediction files, and finished runs side by side."""

import json

import numpy as np
import pytest

from crosssent.train.run_dir import compare_runs, read_predictions, write_predictions


def test_prediction_files_read_back_one_split(tmp_path):
    rows = [("a", "valid", 1.0, 0.5), ("b", "test", -2.0, -1.25), ("c", "test", 0.0, 0.125)]
    write_predictions(tmp_path / "p.csv", rows)
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "id,split,label,prediction"
    assert read_predictions(tmp_path / "p.csv", "test") == [("b", -2.0, -1.25), ("c", 0.0, 0.125)]


def test_compare_runs_puts_finished_runs_side_by_side(tmp_path):
    for name, mae in (("full", 0.5), ("text", 0.75)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"test": {"mae": mae, "corr": 0.8}}))
    table = compare_runs([tmp_path / "full", tmp_path / "text"]).splitlines()
    assert table[0].split() == ["metric", "full", "text"]
    assert table[1].split() == ["mae", "0.5000", "0.7500"] and np.isclose(float(table[2].split()[2]), 0.8)
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(ValueError, match="unfinished: no metrics.json"):
        compare_runs([tmp_path / "full", tmp_path / "unfinished"])
    with pytest.raises(ValueError, match="has no 'valid' metrics"):
        compare_runs([tmp_path / "full"], split="valid")
