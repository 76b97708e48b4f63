import csv
import json
import re

import numpy as np
import pytest
import torch

from crosssent.scoring import evaluate_folder
from crosssent.train.trainer import RunInterrupted, train_run
from tests.conftest import tiny_settings


def test_keep_checkpoints_keeps_best_and_last(tmp_path, synthetic_dir):
    out = tmp_path / "run"
    train_run(tiny_settings(synthetic_dir, train={"keep_checkpoints": True}), out)
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert len(list((out / "checkpoints").glob("best-epoch*.ckpt"))) == 1


def test_last_checkpoint_is_the_latest_epoch_even_when_it_is_not_the_best(tmp_path, synthetic_dir, monkeypatch):
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    # only the first epoch counts as an improvement: the later ones must still reach last.ckpt,
    # or --resume would go back to the best epoch and redo the rest
    improved = iter([True])
    monkeypatch.setattr(ModelCheckpoint, "check_monitor_top_k", lambda self, trainer, current=None: next(improved, False))
    out = tmp_path / "run"
    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 3, "patience": 5, "keep_checkpoints": True}), out)
    assert [p.name for p in (out / "checkpoints").glob("best-epoch*.ckpt")] == ["best-epoch0.ckpt"]
    last = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 2
    assert json.loads((out / "run_info.json").read_text())["best_checkpoint"] == "best-epoch0.ckpt"


def test_a_dropped_modality_is_absent_from_the_model_and_ignored_when_scoring(tmp_path, synthetic_dir):
    out = tmp_path / "run"
    settings = tiny_settings(synthetic_dir, data={"drop_modalities": ["audio"]}, train={"max_epochs": 1})
    metrics = train_run(settings, out)
    prep = json.loads((out / "model" / "preprocessing.json").read_text())
    assert prep["audio_dim"] == 0 and prep["visual_dim"] > 0
    assert json.loads((out / "model" / "config.json").read_text())["audio_dim"] == 0
    # the full dataset (with audio) scores the same: the model never sees the stream it lacks
    again, _ = evaluate_folder(out / "model", synthetic_dir, ("test",))
    assert again["test"] == pytest.approx(metrics["test"], abs=1e-5)


def test_run_directory_has_every_file(tmp_path, synthetic_dir, capsys):
    out = tmp_path / "run"
    metrics = train_run(tiny_settings(synthetic_dir), out)
    # without a progress bar, each epoch still reports one line (the grid logs rely on it)
    assert re.findall(r"epoch (\d)/2: valid MSE \d+\.\d{4}", capsys.readouterr().err) == ["1", "2"]
    assert set(metrics) == {"valid", "test"} and "acc2_non0" in metrics["test"]
    for name in (
        "config.yaml",
        "metrics.json",
        "predictions.csv",
        "run_info.json",
        "model/config.json",
        "model/model.safetensors",
        "model/backbone/config.json",
        "model/preprocessing.json",
        "model/tokenizer.json",
        "logs/metrics.csv",
    ):
        assert (out / name).is_file(), name
    assert list((out / "logs").glob("events.out.tfevents.*"))
    assert not (out / "checkpoints").exists()  # dropped once model/ and metrics.json exist
    with (out / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0].keys() == {"id", "split", "label", "prediction"}
    assert {r["split"] for r in rows} == {"valid", "test"} and len(rows) == 72
    assert json.loads((out / "metrics.json").read_text()) == metrics
    # the exported model alone reproduces the test metrics
    again, _ = evaluate_folder(out / "model", synthetic_dir, ("test",))
    assert again["test"] == pytest.approx(metrics["test"], abs=1e-5)
    with pytest.raises(ValueError, match="holds a finished run"):
        train_run(tiny_settings(synthetic_dir), out)


def test_resume_reaches_the_same_metrics(tmp_path, synthetic_dir):
    full = train_run(tiny_settings(synthetic_dir, train={"max_epochs": 3}), tmp_path / "full")
    cut = tiny_settings(synthetic_dir, train={"max_epochs": 3, "interrupt_after_epochs": 1})
    with pytest.raises(RunInterrupted):
        train_run(cut, tmp_path / "cut")
    assert not (tmp_path / "cut" / "metrics.json").exists()  # never looks complete
    with pytest.raises(ValueError, match="pass --resume"):
        train_run(cut, tmp_path / "cut")
    resumed = train_run(tiny_settings(synthetic_dir, train={"max_epochs": 3}), tmp_path / "cut", resume=True)
    assert resumed["test"] == pytest.approx(full["test"], abs=1e-6)
    info = {name: json.loads((tmp_path / name / "run_info.json").read_text()) for name in ("full", "cut")}
    assert (info["full"]["resumed"], info["cut"]["resumed"]) == (False, True)
    # the resumed run's wall time includes its first process, up to the checkpoint it resumed from
    assert info["full"]["wall_seconds_before_resume"] == 0
    assert 0 < info["cut"]["wall_seconds_before_resume"] <= info["cut"]["wall_seconds"]
    assert 0 < info["full"]["data_wait_share"] < 0.5  # measured, and the data path is not the bottleneck


def test_same_seed_same_run_other_seed_differs(tmp_path, synthetic_dir):
    a = train_run(tiny_settings(synthetic_dir), tmp_path / "a")
    b = train_run(tiny_settings(synthetic_dir), tmp_path / "b")
    c = train_run(tiny_settings(synthetic_dir, train={"seed": 1}), tmp_path / "c")
    assert a == b and a != c


def test_text_only_dataset_runs_with_every_variant(tmp_path):
    from crosssent.data.dataset import DatasetMeta, save_dataset

    meta = DatasetMeta(name="txt", task="sims", label_min=-1, label_max=1, alignment="none")
    rng = np.random.default_rng(0)
    n = 40
    cols = {
        "id": [f"c{i}" for i in range(n)],
        "text": ["good" if i % 2 else "bad" for i in range(n)],
        "label": rng.uniform(-1, 1, n).round(2).tolist(),
        "split": (["train"] * 24 + ["valid"] * 8 + ["test"] * 8),
    }
    save_dataset(cols, meta, tmp_path / "d", where="t")
    for variant in ("crosssent", "mag", "late_fusion", "text_only"):
        m = train_run(tiny_settings(tmp_path / "d", model={"variant": variant}, train={"max_epochs": 1}), tmp_path / variant)
        assert set(m["test"]) >= {"acc2", "acc5", "qwk3"}


@pytest.mark.slow
def test_full_model_beats_text_only_on_synthetic_over_three_seeds(tmp_path_factory):
    from crosssent.data.sources.synthetic import generate

    data = generate(tmp_path_factory.mktemp("d") / "s", n_train=600, n_valid=100, n_test=150, seed=0)
    mae = {}
    for variant in ("crosssent", "text_only"):
        mae[variant] = [
            train_run(
                tiny_settings(data, model={"variant": variant}, train={"seed": seed, "max_epochs": 6, "patience": 6}),
                tmp_path_factory.mktemp(f"{variant}{seed}"),
            )["test"]["mae"]
            for seed in range(3)
        ]
    print("synthetic test MAE per seed:", mae)
    assert np.mean(mae["crosssent"]) < np.mean(mae["text_only"]) - 0.1
    assert max(mae["crosssent"]) < min(mae["text_only"])


def test_feature_statistics_come_from_the_training_split_only(tmp_path, synthetic_dir):
    from crosssent.data.dataset import load_dataset
    from crosssent.model.folder import load_weights

    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1}), tmp_path / "run")
    model = load_weights(tmp_path / "run" / "model")
    table, _ = load_dataset(synthetic_dir)
    train = np.concatenate([np.array(a) for a, s in zip(table["audio"], table["split"]) if s == "train" and a])
    everything = np.concatenate([np.array(a) for a in table["audio"] if a])
    assert np.allclose(model.audio_norm.mean.numpy(), train.mean(0), atol=1e-5)
    assert not np.allclose(model.audio_norm.mean.numpy(), everything.mean(0), atol=1e-5)
    assert np.allclose(
        model.visual_norm.std.numpy(),
        np.concatenate([np.array(v) for v, s in zip(table["visual"], table["split"]) if s == "train" and v]).std(0),
        atol=1e-5,
    )


def test_parameter_groups_give_the_fusion_its_own_rate():
    from crosssent.model.backbones import tiny_random_backbone
    from crosssent.model.configuration import CrossSentConfig
    from crosssent.model.modeling import build_model
    from crosssent.train.config import TrainSettings
    from crosssent.train.trainer import parameter_groups

    model = build_model(CrossSentConfig(audio_dim=4, visual_dim=3, inject_layer=1), backbone=tiny_random_backbone())
    n_fusion = sum(p.numel() for n, p in model.named_parameters() if n.startswith("fusion."))
    n_backbone = sum(p.numel() for n, p in model.named_parameters() if n.startswith("backbone."))

    def by_lr(groups):
        out = {}
        for g in groups:
            out[g["lr"]] = out.get(g["lr"], 0) + sum(p.numel() for p in g["params"])
        return out

    own = by_lr(parameter_groups(model, TrainSettings(lr_backbone=1e-5, lr_new=1e-3, lr_fusion=1e-4)))
    assert own[1e-4] == n_fusion > 0 and own[1e-5] == n_backbone
    assert own[1e-3] == sum(p.numel() for p in model.parameters()) - n_fusion - n_backbone
    shared = by_lr(parameter_groups(model, TrainSettings(lr_backbone=1e-5, lr_new=1e-3)))
    assert set(shared) == {1e-5, 1e-3} and shared[1e-3] == own[1e-3] + n_fusion


def test_layer_decay_scales_the_encoder_rate_from_the_top_layer_down():
    import torch

    from crosssent.model.backbones import tiny_random_backbone
    from crosssent.model.configuration import CrossSentConfig
    from crosssent.model.modeling import build_model
    from crosssent.train.config import TrainSettings
    from crosssent.train.trainer import parameter_groups

    # inject after layer 1 of 2: the wrapped layer's parameters must keep their layer's rate
    model = build_model(CrossSentConfig(audio_dim=4, visual_dim=3, inject_layer=1), backbone=tiny_random_backbone())
    groups = parameter_groups(model, TrainSettings(lr_backbone=1e-4, lr_new=1e-3, lr_layer_decay=0.5))
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    seen = {}
    for name, param in model.named_parameters():
        if name.startswith("backbone."):
            where = "embeddings" if ".embeddings." in name else name.split(".")[3]
            seen.setdefault(where, set()).add(rate[id(param)])
        else:
            assert rate[id(param)] == 1e-3, name
    assert seen == {"1": {1e-4}, "0": {5e-5}, "embeddings": {2.5e-5}}
    plain = parameter_groups(model, TrainSettings(lr_backbone=1e-4, lr_new=1e-3))
    assert {g["lr"] for g in plain} == {1e-4, 1e-3}
    flat = torch.nn.Module()
    flat.backbone = torch.nn.Linear(2, 2)  # no encoder.layer.N: nothing to decay over
    with pytest.raises(ValueError, match="lr_layer_decay"):
        parameter_groups(flat, TrainSettings(lr_layer_decay=0.9))


@pytest.mark.parametrize("variant", ["crosssent", "text_only", "mag", "late_fusion"])
def test_lr_fusion_is_listed_as_unused_exactly_where_no_fusion_module_exists(variant):
    """The runner keeps a variant's finished runs when only a setting it never reads changed."""
    from crosssent.model.backbones import tiny_random_backbone
    from crosssent.model.configuration import CrossSentConfig
    from crosssent.model.modeling import build_model
    from crosssent.train.config import UNUSED_TRAIN_FIELDS

    model = build_model(
        CrossSentConfig(variant=variant, audio_dim=4, visual_dim=3, inject_layer=1), backbone=tiny_random_backbone()
    )
    has_fusion = any(n.startswith("fusion.") for n, _ in model.named_parameters())
    assert ("lr_fusion" in UNUSED_TRAIN_FIELDS[variant]) == (not has_fusion)


@pytest.mark.parametrize(("scheduler", "last_rate"), [("linear", 0.0), ("constant", 1e-3)])
def test_learning_rate_schedule_warms_up_then_decays_or_stays(scheduler, last_rate):
    import torch

    from crosssent.train.config import TrainSettings
    from crosssent.train.trainer import learning_rate_schedule

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = learning_rate_schedule(optimizer, TrainSettings(warmup_ratio=0.1, scheduler=scheduler), total_steps=100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == 0.0 and rates[10] == pytest.approx(1e-3)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(last_rate)


def test_hide_streams_at_random_masks_whole_streams_of_some_clips_only():
    import torch

    from crosssent.train.trainer import hide_streams_at_random

    torch.manual_seed(0)
    audio_mask = torch.ones(4000, 3, dtype=torch.bool)
    audio_mask[:, 2] = False  # padding stays padding
    inputs = {
        "input_ids": torch.zeros(4000, 5),
        "attention_mask": torch.ones(4000, 5),
        "audio": torch.randn(4000, 3, 2),
        "audio_mask": audio_mask,
        "visual": torch.randn(4000, 1, 2),
        "visual_mask": None,
    }
    assert hide_streams_at_random(inputs, rate=0.0) is inputs
    out = hide_streams_at_random(inputs, rate=0.3)
    assert out["input_ids"] is inputs["input_ids"] and out["audio"] is inputs["audio"]
    audio_shown, visual_shown = out["audio_mask"][:, 0], out["visual_mask"][:, 0]
    assert torch.equal(out["audio_mask"][:, 1], audio_shown) and not out["audio_mask"][:, 2].any()
    assert abs((~audio_shown).float().mean().item() - 0.3) < 0.03
    assert abs((~visual_shown).float().mean().item() - 0.3) < 0.03
    assert abs((audio_shown == visual_shown).float().mean().item() - (0.7**2 + 0.3**2)) < 0.03  # drawn apart
    assert hide_streams_at_random({**inputs, "audio": None, "audio_mask": None}, rate=0.5)["audio_mask"] is None


def test_modality_dropout_changes_training(tmp_path, synthetic_dir):
    plain = train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1}), tmp_path / "plain")
    hidden = train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1, "modality_dropout": 0.5}), tmp_path / "hidden")
    assert np.isfinite(hidden["test"]["mae"]) and hidden["test"]["mae"] != plain["test"]["mae"]


def test_an_encoder_loaded_in_eval_mode_is_trained_with_its_dropout_on(tmp_path, synthetic_dir, monkeypatch):
    """``from_pretrained`` returns encoders in eval mode and Lightning trains modules in the mode
    it finds; training must still switch the encoder's dropout on (and scoring switch it off)."""
    import torch

    import crosssent.train.trainer as training
    from crosssent.model.backbones import load_backbone

    seen = []  # (grad enabled, encoder dropout active) for every encoder forward pass

    def eval_mode_backbone(name, *, seed=0):
        backbone, tokenizer = load_backbone(name, seed=seed)
        backbone.eval()
        dropout = next(m for m in backbone.modules() if isinstance(m, torch.nn.Dropout))
        backbone.register_forward_pre_hook(lambda module, args: seen.append((torch.is_grad_enabled(), dropout.training)))
        return backbone, tokenizer

    monkeypatch.setattr(training, "load_backbone", eval_mode_backbone)
    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 1}), tmp_path / "run")
    trained = [active for grad, active in seen if grad]
    assert trained and all(trained)
    assert not any(active for grad, active in seen if not grad)


def test_ema_weights_are_the_ones_validated_selected_and_exported(tmp_path, synthetic_dir):
    import torch

    plain = train_run(tiny_settings(synthetic_dir), tmp_path / "plain")
    out = tmp_path / "ema"
    ema = train_run(tiny_settings(synthetic_dir, train={"ema_decay": 0.9, "keep_checkpoints": True}), out)
    assert ema["test"] != plain["test"]
    with (out / "predictions.csv").open() as handle:
        saved = list(csv.DictReader(handle))
    # the run's final scoring sees the validation split as its model selection saw it ...
    valid = [(float(r["prediction"]) - float(r["label"])) ** 2 for r in saved if r["split"] == "valid"]
    info = json.loads((out / "run_info.json").read_text())
    assert float(np.mean(valid)) == pytest.approx(info["best_valid_mse"], rel=1e-5)
    # ... and the exported model alone gives the same predictions
    _, rows = evaluate_folder(out / "model", synthetic_dir, ("valid", "test"))
    assert [row[3] for row in rows] == pytest.approx([float(r["prediction"]) for r in saved], abs=1e-5)
    # checkpoints hold the average as their weights and the trained weights beside them
    last = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["state_dict"].keys() == last["current_model_state"].keys()
    assert any(not torch.equal(value, last["current_model_state"][key]) for key, value in last["state_dict"].items())


def test_resume_with_ema_reaches_the_same_metrics(tmp_path, synthetic_dir):
    train = {"max_epochs": 3, "ema_decay": 0.9}
    full = train_run(tiny_settings(synthetic_dir, train=train), tmp_path / "full")
    with pytest.raises(RunInterrupted):
        train_run(tiny_settings(synthetic_dir, train={**train, "interrupt_after_epochs": 1}), tmp_path / "cut")
    resumed = train_run(tiny_settings(synthetic_dir, train=train), tmp_path / "cut", resume=True)
    assert resumed["test"] == pytest.approx(full["test"], abs=1e-6)


def test_the_epoch_line_comes_after_that_epochs_checkpoint(tmp_path, synthetic_dir, monkeypatch):
    """A log that says "epoch N" means --resume can start after epoch N."""
    import io
    import re
    import sys

    out = tmp_path / "run"
    seen = []

    class Stderr(io.StringIO):
        def write(self, text):
            found = re.search(r"epoch (\d+)/", text)
            if found:
                last = out / "checkpoints" / "last.ckpt"
                epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"] if last.exists() else None
                seen.append((int(found.group(1)), epoch))
            return super().write(text)

    monkeypatch.setattr(sys, "stderr", Stderr())
    train_run(tiny_settings(synthetic_dir, train={"max_epochs": 2, "progress_bar": False}), out)
    assert seen == [(1, 0), (2, 1)]  # Lightning counts epochs from 0
