"""Whisper base's encoder in torch, read from the CTranslate2 ``model.bin`` the project ships, so
that its middle layers can be used (CTranslate2's ``encode`` returns only the last).

Why: a ridge probe per layer on RAVDESS (scripts/probe_whisper_layers.py) finds that emotion in
the voice is carried more by the middle layers than by the output, which is shaped for the
decoder's words. The ``whisper-layerN`` audio extractors (features/audio.py) use this module.

The computation is Whisper's encoder (two convolutions, sinusoidal positions, pre-norm
Transformer layers with 8 heads of 64; float32); its last layer, with the final LayerNorm,
matches CTranslate2's float32 ``encode`` to about 2e-4 (tests/features/test_whisper_encoder.py).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
HEAD_WIDTH = 64  # Whisper's attention heads are 64 wide in every size


def read_ctranslate2_encoder(path: Path) -> dict[str, torch.Tensor]:
    """The ``encoder/...`` variables of a CTranslate2 model.bin (format version 6), as float32:
    a header (version, spec name, revision, count), then per variable its name, rank, dims,
    dtype id, byte count and bytes. A model converted with int8/int16 weights is refused (its
    scales would have to be applied); the shipped Whisper base holds float weights."""
    data = path.read_bytes()
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal offset
        size = take("<H")
        value = data[offset : offset + size].decode().rstrip("\x00")
        offset += size
        return value

    try:
        version, _, _, count = take("<I"), text(), take("<I"), take("<I")
    except struct.error:
        raise ValueError(f"{path}: not a CTranslate2 model file") from None
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 model format {version}, this reader knows 6")
    weights = {}
    for _ in range(count):
        try:
            name, rank = text(), take("<B")
            dims = [take("<I") for _ in range(rank)]
            dtype, size = take("<B"), take("<I")
        except struct.error:
            raise ValueError(f"{path}: ends inside a variable's header; the file is cut short") from None
        if name.startswith("encoder/") and dtype in (1, 2) and rank > 1:
            raise ValueError(f"{path}: {name} is quantised ({np.dtype(_DTYPES[dtype]).name}); this reader needs float weights")
        if offset + size > len(data):
            raise ValueError(f"{path}: ends inside {name}; the file is cut short")
        if name.startswith("encoder/") and dtype in _DTYPES and rank:
            array = np.frombuffer(data, _DTYPES[dtype], count=int(np.prod(dims)), offset=offset)
            weights[name] = torch.from_numpy(array.astype(np.float32).reshape(dims))
        offset += size
    if "encoder/conv1/weight" not in weights:
        raise ValueError(f"{path}: holds no Whisper encoder")
    return weights


def encoder_layer_count(weights: dict[str, torch.Tensor]) -> int:
    """How many Transformer layers the encoder in ``weights`` has (6 for Whisper base)."""
    layers = 0
    while f"encoder/layer_{layers}/ffn/linear_0/weight" in weights:
        layers += 1
    return layers


def encoder_layers(weights: dict[str, torch.Tensor], mel: np.ndarray, *, up_to: int | None = None) -> list[torch.Tensor]:
    """Log-mel (80, T), T even -> the states after each layer, (T/2, 512) each, for the first
    ``up_to`` layers (default: all); the encoder's last layer comes with its final LayerNorm, as
    CTranslate2 returns it. The work stops after layer ``up_to``."""
    f = torch.nn.functional
    total = encoder_layer_count(weights)
    up_to = total if up_to is None else up_to
    if not 1 <= up_to <= total:
        raise ValueError(f"the encoder has layers 1-{total}, not {up_to}")

    def norm(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return f.layer_norm(x, (x.shape[-1],), weights[f"{prefix}/gamma"], weights[f"{prefix}/beta"])

    def linear(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return x @ weights[f"{prefix}/weight"].T + weights[f"{prefix}/bias"]

    mel_t = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))[None]  # (1, 80, T)
    x = f.gelu(f.conv1d(mel_t, weights["encoder/conv1/weight"], weights["encoder/conv1/bias"], padding=1))
    x = f.gelu(f.conv1d(x, weights["encoder/conv2/weight"], weights["encoder/conv2/bias"], stride=2, padding=1))[0].T
    x = x + weights["encoder/position_encodings/encodings"][: x.shape[0]]  # (T/2, 512)
    states = []
    for layer in range(up_to):
        prefix = f"encoder/layer_{layer}"
        qkv = linear(norm(x, f"{prefix}/self_attention/layer_norm"), f"{prefix}/self_attention/linear_0")
        q, k, v = (t.reshape(t.shape[0], -1, HEAD_WIDTH).transpose(0, 1) for t in qkv.chunk(3, dim=-1))  # (heads, T/2, 64)
        context = f.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(x.shape)
        x = x + linear(context, f"{prefix}/self_attention/linear_1")
        hidden = f.gelu(linear(norm(x, f"{prefix}/ffn/layer_norm"), f"{prefix}/ffn/linear_0"))
        x = x + linear(hidden, f"{prefix}/ffn/linear_1")
        states.append(x)
    if up_to == total:
        states[-1] = norm(x, "encoder/layer_norm")
    return states
