"""Shared fixtures: tiny random-weight backbones built from a config in code (no downloads)."""

from __future__ import annotations

import copy

import pytest
import torch

from crosssent.model.backbones import tiny_random_backbone


@pytest.fixture(scope="session")
def _tiny_bert():
    return tiny_random_backbone("bert", seed=0)


@pytest.fixture
def tiny_bert(_tiny_bert):
    """A fresh copy per test, so a test that trains never changes another test's weights."""
    return copy.deepcopy(_tiny_bert)


def toy_batch(*, batch=4, length=8, audio_dim=5, visual_dim=3, frames=6, seed=0, vocab=60):
    """Random token ids and A/V sequences with some padding in every stream."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=g)
    ids[:, 0] = 2  # [CLS]
    text_mask = torch.ones(batch, length, dtype=torch.long)
    text_mask[0, -3:] = 0
    ids[0, -3:] = 0
    audio = torch.randn(batch, frames, audio_dim, generator=g)
    visual = torch.randn(batch, frames, visual_dim, generator=g)
    audio_mask = torch.ones(batch, frames, dtype=torch.bool)
    visual_mask = torch.ones(batch, frames, dtype=torch.bool)
    audio_mask[1, -2:] = False
    visual_mask[2, -4:] = False
    return dict(
        input_ids=ids,
        attention_mask=text_mask,
        audio=audio,
        audio_mask=audio_mask,
        visual=visual,
        visual_mask=visual_mask,
    )


TINY_TRAIN = {
    "model": {"backbone": "tiny-random", "inject_layer": 1, "adapter_dim": 16, "head_hidden": 32},
    "train": {
        "max_epochs": 2,
        "batch_size": 16,
        "lr_backbone": 3e-3,
        "lr_new": 3e-3,
        "progress_bar": False,
        "log_every_n_steps": 1,
    },
}


def tiny_settings(data_path, **sections):
    """RunSettings for a seconds-long run on the tiny random backbone."""
    from crosssent.train.config import RunSettings

    tree = {"data": {"path": str(data_path), "max_len": 24, **sections.get("data", {})}}
    for name in ("model", "objective", "train"):
        tree[name] = {**TINY_TRAIN.get(name, {}), **sections.get(name, {})}
    return RunSettings.model_validate(tree)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    from crosssent.data.sources.synthetic import generate

    return generate(tmp_path_factory.mktemp("data") / "synthetic", n_train=96, n_valid=32, n_test=40, seed=1)


def sims_scale_copy(synthetic_dir, out):
    """The synthetic clips as text-only data on CH-SIMS's [-1, 1] scale (labels divided by 3),
    another corpus for the transfer tests."""
    from crosssent.data.dataset import load_dataset, save_dataset

    table, meta = load_dataset(synthetic_dir)
    columns = {
        "id": table["id"],
        "text": table["text"],
        "split": table["split"],
        "label": [round(y / 3, 5) for y in table["label"]],
    }
    scale = {"name": "text-sims", "task": "sims", "label_min": -1.0, "label_max": 1.0, "alignment": "none"}
    streams = {"audio_dim": 0, "visual_dim": 0, "audio_features": "", "visual_features": ""}
    return save_dataset(columns, meta.model_copy(update={**scale, **streams}), out, where="test")
