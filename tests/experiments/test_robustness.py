"""crosssent robustness: every corruption at every strength, the same corrupted input for every
model, the gate reported for GMRA models, a table and a figure per corruption."""

import json

import matplotlib.image
import pytest
import torch
from typer.testing import CliRunner

from crosssent.cli import app
from crosssent.data.collate import Batch
from crosssent.experiments.robustness import CORRUPTIONS, corrupt, publish_outputs
from crosssent.train.trainer import train_run
from tests.conftest import tiny_settings
from tests.features.test_audio import needs_opensmile
from tests.features.test_build import _labels, _recordings, build


def _batch():
    frames = torch.arange(1, 2 * 4 * 3 + 1, dtype=torch.float32).reshape(2, 4, 3)
    return Batch(
        id=["a", "b"],
        input_ids=torch.ones(2, 4, dtype=torch.long),
        attention_mask=torch.ones(2, 4, dtype=torch.long),
        label=torch.zeros(2),
        audio=frames,
        audio_mask=torch.ones(2, 4, dtype=torch.bool),
        visual=frames[..., :2].clone(),
        visual_mask=torch.ones(2, 4, dtype=torch.bool),
    )


def test_each_corruption_does_what_it_says():
    batch, power = _batch(), {"audio": torch.full((3,), 100.0), "visual": torch.full((2,), 100.0)}
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    noisy = corrupt(batch, "noise", 0.0, g(), power)  # 0 dB: noise as strong as the signal
    assert 5 < float((noisy.audio - batch.audio).std()) < 15 and torch.equal(noisy.input_ids, batch.input_ids)
    assert torch.equal(corrupt(batch, "noise", 0.0, g(), power).audio, noisy.audio)  # seeded
    dropped = corrupt(batch, "dropout", 0.5, g(), power)
    assert 0.2 < float((dropped.audio == 0).float().mean()) < 0.8 and dropped.audio_mask.all()
    masked = corrupt(batch, "frame_drop", 0.5, g(), power)
    assert not masked.audio_mask.all() and torch.equal(masked.audio, batch.audio)
    gone = corrupt(batch, "missing", "audio", g(), power)
    assert gone.audio is None and gone.audio_mask is None and gone.visual is not None
    assert corrupt(batch, "missing", "both", g(), power).visual is None
    shifted = corrupt(batch, "shift", 1, g(), power)
    assert torch.equal(shifted.audio[:, 1:], batch.audio[:, :-1]) and not shifted.audio_mask[:, 0].any()
    with pytest.raises(ValueError, match="unknown corruption 'blur'"):
        corrupt(batch, "blur", 1, g(), power)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, synthetic_dir):
    base = tmp_path_factory.mktemp("robust")
    for variant in ("crosssent", "late_fusion"):
        train_run(tiny_settings(synthetic_dir, model={"variant": variant}, train={"max_epochs": 2}), base / variant)
    return base


def test_the_command_scores_every_model_under_every_corruption(two_models, synthetic_dir, tmp_path):
    out = tmp_path / "robust"
    models = [str(two_models / variant / "model") for variant in ("crosssent", "late_fusion")]
    command = f"robustness --model {models[0]} --model {models[1]} --data {synthetic_dir} --out {out}"
    done = CliRunner().invoke(app, command.split())
    assert done.exit_code == 0, done.output
    cells = json.loads((out / "robustness.json").read_text())["cells"]
    per_model = 1 + sum(len(v) for v in CORRUPTIONS.values())  # clean + every strength (synthetic data is word-aligned)
    assert len(cells) == 2 * per_model
    gmra = [c for c in cells if c["model"].endswith("(crosssent)")]
    bare = [c for c in gmra if c["corruption"] == "missing" and c["strength"] == "both"]  # no stream: no gate acts
    assert all(c["mean_gate"] is not None for c in gmra if c not in bare) and bare[0]["mean_gate"] is None
    assert all(c["mean_gate"] is None for c in cells if c not in gmra)
    clean = next(c for c in gmra if c["corruption"] == "clean")["metrics"]["corr"]
    worst = next(c for c in gmra if c["corruption"] == "missing" and c["strength"] == "both")["metrics"]["corr"]
    assert worst < clean  # the tone of the synthetic data lives in the A/V: withholding both must cost
    report = (out / "robustness.md").read_text()
    assert f"Command: `crosssent robustness --model {models[0]}" in report
    for corruption in CORRUPTIONS:
        image = matplotlib.image.imread(out / f"robustness-{corruption}.png")
        assert image.shape[1] > 900 and image.std() > 0.05
    # the wide table: one row per model, Corr of every strength of a corruption in one cell
    wide = next(line for line in report.splitlines() if line.startswith("| " + gmra[0]["model"]))
    shift = [c["metrics"]["corr"] for c in gmra if c["corruption"] == "shift"]
    assert " / ".join(f"{v:.3f}" for v in shift) == wide.strip("| ").split(" | ")[-1]  # shift: the last column

    # published later from the folder alone (no model, no data): a page, its figures, the index
    pages = tmp_path / "docs" / "results"
    pages.mkdir(parents=True)
    published = CliRunner().invoke(app, ["robustness", "--out", str(out), "--report-only", "--publish", str(pages)])
    assert published.exit_code == 0, published.output
    page = (pages / "robust.md").read_text()
    assert page.startswith("<!-- generated by crosssent robustness --publish") and wide in page
    assert "![shift](../figures/robust-shift.png)" in page and (tmp_path / "docs" / "figures" / "robust-shift.png").is_file()
    assert "[robust](robust.md)" in (pages / "index.md").read_text()
    assert (out / "robustness.md").read_text() == report  # rewritten from the JSON: the same report
    (out / "robustness-noise.png").unlink()
    (pages / "robust.md").unlink()
    with pytest.raises(ValueError, match="robustness-noise.png: figure missing"):
        publish_outputs(out, pages)
    assert not (pages / "robust.md").exists()
    refused = CliRunner().invoke(app, ["robustness", "--out", str(out), "--report-only", "--publish", str(tmp_path / "doc.md")])
    assert refused.exit_code == 2 and "doc.md: needs the folder of published pages" in refused.output


def test_robustness_without_models_or_a_finished_folder_is_one_line(tmp_path):
    done = CliRunner().invoke(app, ["robustness", "--out", str(tmp_path / "none")])
    assert done.exit_code == 2 and "error: --model and --data are needed" in done.output
    done = CliRunner().invoke(app, ["robustness", "--out", str(tmp_path / "none"), "--report-only"])
    assert done.exit_code == 2 and "none: no robustness.json" in done.output


def test_an_unknown_corruption_is_one_line(two_models, synthetic_dir, tmp_path):
    model = str(two_models / "crosssent" / "model")
    done = CliRunner().invoke(
        app, ["robustness", "--model", model, "--data", str(synthetic_dir), "--out", str(tmp_path), "--corruption", "blur"]
    )
    assert done.exit_code == 2 and "--corruption blur: choose from noise, dropout" in done.output


@needs_opensmile
def test_noise_on_the_waveform_is_scored_from_noisy_copies_of_the_data(tmp_path):
    media = _recordings(tmp_path / "media")
    labels = _labels(tmp_path / "labels.csv", [f"c{i}" for i in range(8)])
    clean, _ = build(media, labels, tmp_path / "clean")
    copies = [build(media, labels, tmp_path / f"snr{snr}", noise_snr=snr, splits=("test",))[0] for snr in (0.0, 20.0)]
    train_run(tiny_settings(clean, train={"max_epochs": 1}), tmp_path / "run")
    out, model = tmp_path / "robust", str(tmp_path / "run" / "model")
    base = ["robustness", "--model", model, "--data", str(clean), "--out", str(out), "--corruption", "noise"]
    done = CliRunner().invoke(app, [*base, *(f"--waveform={c}" for c in copies)])
    assert done.exit_code == 0, done.output
    cells = json.loads((out / "robustness.json").read_text())["cells"]
    noisy = [c for c in cells if c["corruption"] == "waveform"]
    assert [c["strength"] for c in noisy] == [20.0, 0.0] and all(c["mean_gate"] is not None for c in noisy)
    clean_mae = next(c for c in cells if c["corruption"] == "clean")["metrics"]["mae"]
    assert noisy[1]["metrics"]["mae"] != clean_mae  # 0 dB reached the features and the prediction
    assert "--waveform" in json.loads((out / "robustness.json").read_text())["command"]
    assert matplotlib.image.imread(out / "robustness-waveform.png").std() > 0.05
    refused = CliRunner().invoke(app, [*base, f"--waveform={clean}"])
    assert refused.exit_code == 2 and "not a noisy copy (build one with --noise-snr DB)" in refused.output
    shuffled = _labels(tmp_path / "l2.csv", [f"c{i}" for i in (1, 0, 2, 3, 4, 5, 7, 6)])
    other = build(media, shuffled, tmp_path / "o", noise_snr=5.0, splits=("test",))[0]
    mixed = CliRunner().invoke(app, [*base, f"--waveform={other}"])
    assert mixed.exit_code == 2 and "test clips are not those of" in mixed.output
