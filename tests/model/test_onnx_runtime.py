"""The ONNX Runtime path: export every variant of a tiny model, parity with torch on new shapes
(padded tokens, masked and missing streams), int8 as an option, the scoring paths through it,
and a folder it cannot export refused in one line."""

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from crosssent.cli import app
from crosssent.model.folder import ONNX_INT8_NAME, ONNX_NAME
from crosssent.model.onnx_runtime import OnnxModel, export_onnx, load_runtime
from crosssent.scoring import evaluate_folder
from crosssent.train.trainer import train_run
from tests.conftest import tiny_settings

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_dir):
    made = {}
    for variant, drop in (
        ("crosssent", []),
        ("mag", []),
        ("late_fusion", []),
        ("text_only", ["audio", "visual"]),
        ("crosssent-visual", ["audio"]),
    ):
        out = tmp_path_factory.mktemp("onnx") / variant
        model = {"variant": variant.split("-")[0]}
        train_run(tiny_settings(synthetic_dir, model=model, data={"drop_modalities": drop}, train={"max_epochs": 1}), out)
        made[variant] = out
    return made


@pytest.mark.parametrize("variant", ["crosssent", "mag", "late_fusion", "text_only", "crosssent-visual"])
def test_every_variant_exports_and_scores_a_test_split_as_torch_does(runs, variant, synthetic_dir):
    model_dir = runs[variant] / "model"
    written = export_onnx(model_dir)
    assert written == [model_dir / ONNX_NAME] and written[0].stat().st_size > 10_000
    torch_metrics, torch_rows = evaluate_folder(model_dir, synthetic_dir, ("test",))
    onnx_metrics, onnx_rows = evaluate_folder(model_dir, synthetic_dir, ("test",), runtime="onnx")
    np.testing.assert_allclose([r[3] for r in onnx_rows], [r[3] for r in torch_rows], atol=1e-4)
    assert abs(onnx_metrics["test"]["corr"] - torch_metrics["test"]["corr"]) < 1e-4


def test_missing_streams_and_padding_match_torch(runs):
    model_dir = runs["crosssent"] / "model"
    export_onnx(model_dir)
    model, _, _ = load_runtime(model_dir, "torch")
    runner = OnnxModel(model_dir / ONNX_NAME, model.config)
    generator = torch.Generator().manual_seed(1)
    inputs = {
        "input_ids": torch.randint(5, 90, (3, 11), generator=generator),
        "attention_mask": torch.ones(3, 11, dtype=torch.long),
        "audio": torch.randn(3, 11, model.config.audio_dim, generator=generator),
        "audio_mask": torch.ones(3, 11, dtype=torch.bool),
    }
    inputs["attention_mask"][1, 4:] = 0
    inputs["audio_mask"][2] = False  # one clip's audio wholly missing
    with torch.inference_mode():
        expected = model(**inputs).prediction.numpy()  # visual not given at all
    np.testing.assert_allclose(runner(**inputs).prediction.numpy(), expected, atol=1e-4)


def test_int8_and_the_command_line(runs, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(runs["crosssent"] / "model", model_dir)
    done = CliRunner().invoke(app, ["export", str(model_dir), "--onnx", "--quantize", "int8"])
    assert done.exit_code == 0, done.output
    assert (model_dir / ONNX_NAME).is_file() and (model_dir / ONNX_INT8_NAME).is_file()
    import onnx

    ops = {node.op_type for node in onnx.load(str(model_dir / ONNX_INT8_NAME)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops  # the linear layers run in int8
    scores = {}
    for runtime in ("torch", "onnx", "int8"):
        done = CliRunner().invoke(app, ["predict", "--model", str(model_dir), "--text", "a great film", "--runtime", runtime])
        assert done.exit_code == 0, done.output
        scores[runtime] = float(next(line for line in done.output.splitlines() if line.startswith("1 ")).split()[1])
    assert abs(scores["onnx"] - scores["torch"]) < 1e-3 and abs(scores["int8"] - scores["torch"]) < 0.5
    # the three runtimes timed side by side, with the paired ratio to the first
    bench = ["bench", "--model", str(model_dir), "--out", str(tmp_path / "bench"), "--rounds", "2", "--iters", "2"]
    done = CliRunner().invoke(app, [*bench, "--runtime", "torch", "--runtime", "onnx", "--runtime", "int8"])
    assert done.exit_code == 0, done.output
    report = json.loads((tmp_path / "bench" / "bench-runtime.json").read_text())
    assert list(report["runtimes"]) == ["torch", "onnx", "int8"] and report["runtimes"]["torch"]["ratio"] == 1.0
    assert all(r["clips_per_s"] > 0 and r["range"][0] <= r["clips_per_s"] <= r["range"][1] for r in report["runtimes"].values())


def test_the_onnx_runtimes_never_load_the_torch_weights(runs, monkeypatch):
    model_dir = runs["crosssent"] / "model"
    export_onnx(model_dir)
    torch_model, _, _ = load_runtime(model_dir, "torch")
    import crosssent.model.folder as folder

    monkeypatch.setattr(folder, "load_weights", lambda *_: pytest.fail("the torch weights were loaded"))
    model, tokenizer, prep = load_runtime(model_dir, "onnx")
    assert isinstance(model, OnnxModel) and model.config == torch_model.config and len(tokenizer) > 0 and prep.max_len == 24


def test_what_cannot_be_exported_or_run_is_one_line(runs, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(runs["text_only"] / "model", broken, ignore=shutil.ignore_patterns("*.onnx"))
    (broken / "model.safetensors").unlink()
    done = CliRunner().invoke(app, ["export", str(broken), "--onnx"])
    assert done.exit_code == 2 and done.output.startswith("error: ") and "model.safetensors" in done.output
    assert not (broken / ONNX_NAME).exists()
    fresh = tmp_path / "fresh"
    shutil.copytree(runs["text_only"] / "model", fresh, ignore=shutil.ignore_patterns("*.onnx"))
    done = CliRunner().invoke(app, ["predict", "--model", str(fresh), "--text", "fine", "--runtime", "onnx"])
    assert done.exit_code == 2 and "no model.onnx; write it first with crosssent export --onnx" in done.output
    done = CliRunner().invoke(app, ["predict", "--model", str(fresh), "--text", "fine", "--runtime", "tpu"])
    assert done.exit_code == 2 and "--runtime tpu: choose from torch, onnx, int8" in done.output
    with pytest.raises(ValueError, match="--quantize int4: only int8 is offered"):
        export_onnx(fresh, quantize="int4")
    (fresh / ONNX_NAME).write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="model.onnx: cannot be loaded by ONNX Runtime"):
        load_runtime(fresh, "onnx")


def _spins(model: OnnxModel) -> str:
    return model.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")


def test_scoring_sessions_spin_and_the_service_session_does_not(runs, monkeypatch):
    model_dir = runs["crosssent"] / "model"
    export_onnx(model_dir)
    assert _spins(load_runtime(model_dir, "onnx")[0]) == "1"  # predict, evaluate, bench: the cores are theirs
    import crosssent.inference.serve as serve

    loaded = []

    def spy(*args, **kwargs):
        result = load_runtime(*args, **kwargs)
        loaded.append(result[0])
        return result

    monkeypatch.setattr(serve, "load_runtime", spy)
    serve.create_app(model_dir, runtime="onnx")
    assert len(loaded) == 1 and _spins(loaded[0]) == "0"  # the service shares them with speech and extractors
