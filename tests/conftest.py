"""Shared fixtures: tiny random-weight backbones built from a config in code (no downloads)."""

from __future__ import annotations

import copy

import pytest
import torch

from crosssent.backbones import tiny_random_backbone


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
        input_ids=ids, attention_mask=text_mask, audio=audio, audio_mask=audio_mask,
        visual=visual, visual_mask=visual_mask,
    )
