"""Aligned rows -> a typed ``Batch`` of tensors, and the sampler that orders an epoch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Sampler


@dataclass
class Batch:
    """One mini-batch. B = clips, L = tokens, Fa/Fv = frames (L, or 1 for clip-level features)."""

    id: list[str]
    input_ids: Tensor  # (B, L) long
    attention_mask: Tensor  # (B, L) long
    label: Tensor  # (B,) float
    audio: Tensor | None = None  # (B, Fa, da) float
    audio_mask: Tensor | None = None  # (B, Fa) bool
    visual: Tensor | None = None  # (B, Fv, dv) float
    visual_mask: Tensor | None = None  # (B, Fv) bool

    def model_inputs(self) -> dict[str, Tensor | None]:
        """Keyword arguments for ``CrossSentModel.forward``."""
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "audio": self.audio,
            "audio_mask": self.audio_mask,
            "visual": self.visual,
            "visual_mask": self.visual_mask,
        }

    def to(self, device: torch.device | str) -> Batch:
        moved: dict[str, Any] = {
            f.name: (value.to(device) if isinstance(value, Tensor) else value)
            for f in fields(self)
            for value in [getattr(self, f.name)]
        }
        return Batch(**moved)


def collate(rows: list[dict]) -> Batch:
    """Stack rows of an aligned table (torch format) into a ``Batch``."""
    first = rows[0]

    def stack(name: str, dtype: torch.dtype) -> Tensor:
        return torch.stack([torch.as_tensor(r[name]) for r in rows]).to(dtype)

    def stack_if_there(name: str, dtype: torch.dtype) -> Tensor | None:
        return stack(name, dtype) if name in first else None

    return Batch(
        id=[r["id"] for r in rows],
        input_ids=stack("input_ids", torch.long),
        attention_mask=stack("attention_mask", torch.long),
        label=stack("label", torch.float32),
        audio=stack_if_there("audio", torch.float32),
        audio_mask=stack_if_there("audio_mask", torch.bool),
        visual=stack_if_there("visual", torch.float32),
        visual_mask=stack_if_there("visual_mask", torch.bool),
    )


class EpochSeededSampler(Sampler[int]):
    """A shuffle that depends only on (seed, epoch), so a resumed run sees the same order as
    an uninterrupted one (Lightning calls ``set_epoch`` before every epoch)."""

    def __init__(self, size: int, *, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=g).tolist())

    def __len__(self) -> int:
        return self.size
