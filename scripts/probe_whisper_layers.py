"""Which layer of Whisper base's encoder carries RAVDESS's emotion best? A ridge probe per layer.

    .venv/bin/python scripts/probe_whisper_layers.py ../shared/data

Runs Whisper base's encoder in torch, from the CTranslate2 weights the project ships (model.bin
read directly; float32; checked against CTranslate2's own ``encode`` on the first clip), keeps
every layer's states, and pools each clip per layer into mean and std (1024 values, as the
``whisper`` extractor's clip vectors). Per layer, a ridge regression (penalty by leave-one-out,
z-scored inputs): fitted on actors 1-14 and scored on the validation actors 15-16, which choose
the layer (lowest validation MSE); then refitted on actors 1-16 and scored on the test actors 17-20, as
scripts/probe_voice.py does. Prints a Markdown table, one row per layer; the layer with the lowest
validation MSE is marked. About 6 minutes on 2 cores.
"""

from __future__ import annotations

import csv
import struct
import time
from pathlib import Path

import numpy as np
import torch
import typer
from sklearn.linear_model import RidgeCV

from crosssent.features.media import read_audio
from crosssent.features.transcribe import whisper_base_folder
from crosssent.metrics import compute_metrics

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ctranslate2_encoder(path: Path) -> dict[str, torch.Tensor]:
    """The ``encoder/...`` variables of a CTranslate2 model.bin (format version 6): a header
    (version, spec name, revision, count), then per variable its name, rank, dims, dtype id,
    byte count and bytes."""
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

    version, _, _, count = take("<I"), text(), take("<I"), take("<I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 model format {version}, this reader knows 6")
    weights = {}
    for _ in range(count):
        name, rank = text(), take("<B")
        dims = [take("<I") for _ in range(rank)]
        dtype, size = take("<B"), take("<I")
        if name.startswith("encoder/") and dtype in _DTYPES and rank:
            array = np.frombuffer(data, _DTYPES[dtype], count=int(np.prod(dims)), offset=offset)
            weights[name] = torch.from_numpy(array.astype(np.float32).reshape(dims))
        offset += size
    return weights


def encoder_layers(weights: dict[str, torch.Tensor], mel: np.ndarray) -> list[torch.Tensor]:
    """Log-mel (80, T) -> the states after each of the six layers, (T/2, 512) each; the last
    with the encoder's final LayerNorm, as CTranslate2 returns it."""
    f = torch.nn.functional

    def norm(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return f.layer_norm(x, (x.shape[-1],), weights[f"{prefix}/gamma"], weights[f"{prefix}/beta"])

    def linear(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return x @ weights[f"{prefix}/weight"].T + weights[f"{prefix}/bias"]

    x = f.gelu(f.conv1d(torch.from_numpy(mel)[None], weights["encoder/conv1/weight"], weights["encoder/conv1/bias"], padding=1))
    x = f.gelu(f.conv1d(x, weights["encoder/conv2/weight"], weights["encoder/conv2/bias"], stride=2, padding=1))[0].T
    x = x + weights["encoder/position_encodings/encodings"][: x.shape[0]]
    states = []
    layer = 0
    while f"encoder/layer_{layer}/ffn/linear_0/weight" in weights:
        prefix = f"encoder/layer_{layer}"
        q, k, v = linear(norm(x, f"{prefix}/self_attention/layer_norm"), f"{prefix}/self_attention/linear_0").chunk(3, dim=-1)
        q, k, v = (t.reshape(t.shape[0], -1, 64).transpose(0, 1) for t in (q, k, v))  # Whisper's heads are 64 wide
        context = f.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(x.shape)
        x = x + linear(context, f"{prefix}/self_attention/linear_1")
        hidden = f.gelu(linear(norm(x, f"{prefix}/ffn/layer_norm"), f"{prefix}/ffn/linear_0"))
        x = x + linear(hidden, f"{prefix}/ffn/linear_1")
        states.append(x)
        layer += 1
    states[-1] = norm(x, "encoder/layer_norm")
    return states


def _ridge(x_fit: np.ndarray, y_fit: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray) -> dict:
    """MOSI's metrics and the MSE of a ridge probe fitted on one set and scored on another."""
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-6
    ridge = RidgeCV(alphas=np.logspace(-2, 5, 15)).fit((x_fit - mean) / std, y_fit)
    predictions = ridge.predict((x_eval - mean) / std)
    return {**compute_metrics(predictions, y_eval, "mosi"), "mse": float(np.mean((predictions - y_eval) ** 2))}


def main(shared_data: Path) -> None:
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor

    torch.set_num_threads(2)
    folder = whisper_base_folder()
    weights = read_ctranslate2_encoder(folder / "model.bin")
    reference = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    mel_of = FeatureExtractor(feature_size=80)
    root = shared_data / "ravdess"
    with open(root / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    vectors: list[list[np.ndarray]] = []
    start = time.time()
    with torch.inference_mode():
        for n, row in enumerate(rows):
            path = next((root / "audio").glob(row["id"] + ".*"))
            mel = mel_of(read_audio(path))
            mel = np.ascontiguousarray(mel[:, : mel.shape[1] - mel.shape[1] % 2], dtype=np.float32)
            states = encoder_layers(weights, mel)
            if n == 0:
                expected = np.asarray(reference.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))[0]
                gap = float(np.abs(states[-1].numpy() - expected).max())
                typer.echo(f"last layer against CTranslate2's encode (float32): max abs difference {gap:.1e}")
                if gap > 1e-2:
                    raise SystemExit("error: the torch encoder does not reproduce CTranslate2's; not probing")
            vectors.append([np.concatenate([s.mean(0).numpy(), s.std(0).numpy()]) for s in states])
            if (n + 1) % 200 == 0:
                typer.echo(f"  {n + 1}/{len(rows)} clips, {time.time() - start:.0f} s", err=True)
    y = np.array([float(r["valence"]) for r in rows])
    actor = np.array([int(r["actor"]) for r in rows])
    train, valid, test = actor <= 14, (actor >= 15) & (actor <= 16), actor >= 17
    results = []
    for layer in range(len(vectors[0])):
        x = np.array([v[layer] for v in vectors])
        on_valid = _ridge(x[train], y[train], x[valid], y[valid])
        on_test = _ridge(x[train | valid], y[train | valid], x[test], y[test])
        results.append((layer + 1, on_valid, on_test))
    chosen = min(results, key=lambda r: r[1]["mse"])[0]
    typer.echo("| layer | valid MSE | valid Corr | test Corr | test Non0-ACC2 | test MAE |")
    typer.echo("|---|---|---|---|---|---|")
    for layer, on_valid, on_test in results:
        mark = " (chosen on validation)" if layer == chosen else ""
        typer.echo(
            f"| {layer}{mark} | {on_valid['mse']:.3f} | {on_valid['corr']:.3f} | {on_test['corr']:.3f} | "
            f"{100 * on_test['acc2_non0']:.1f} | {on_test['mae']:.3f} |"
        )


if __name__ == "__main__":
    typer.run(main)
