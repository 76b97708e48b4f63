"""The service load test: a real crosssent serve process on loopback, bounded."""

import json

from typer.testing import CliRunner

from crosssent.cli import app
from crosssent.train.trainer import train_run
from tests.conftest import tiny_settings


def test_bench_service_loads_a_real_server_and_reports_each_level(tmp_path, synthetic_dir):
    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1}), tmp_path / "run")
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        app,
        [
            "bench-service",
            "--model",
            str(tmp_path / "run" / "model"),
            "--out",
            str(out),
            "--clients",
            "1",
            "--clients",
            "4",
            "--requests",
            "12",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "service-bench.json").read_text())
    assert [level["clients"] for level in report["levels"]] == [1, 4]
    for level in report["levels"]:
        assert level["ok"] == 12 and level["errors"] == 0 and level["requests_per_s"] > 0
        assert 0 < level["p50_ms"] <= level["p99_ms"]
    text = (out / "service-bench.md").read_text()
    assert "crosssent bench-service --model" in text and "| 4 |" in text
    bad = CliRunner().invoke(app, ["bench-service", "--model", str(tmp_path), "--out", str(out)])
    assert bad.exit_code == 2 and "not a CrossSent model folder" in bad.output
