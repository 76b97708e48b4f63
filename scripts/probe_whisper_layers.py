"""Which layer of Whisper base's encoder carries RAVDESS's emotion best? A ridge probe per layer.

    .venv/bin/python scripts/probe_whisper_layers.py ../shared/data

Runs Whisper base's encoder in torch (crosssent.features.whisper_encoder, as the ``whisper-layerN``
audio extractors do; float32; checked against CTranslate2's own ``encode`` on the first clip), keeps
every layer's states, and pools each clip per layer into mean and std (1024 values, as the
``whisper`` extractor's clip vectors). Per layer, a ridge regression (penalty by leave-one-out,
z-scored inputs): fitted on actors 1-14 and scored on the validation actors 15-16, which choose
the layer (lowest validation MSE); then refitted on actors 1-16 and scored on the test actors 17-20, as
scripts/probe_voice.py does. Prints a Markdown table, one row per layer; the layer with the lowest
validation MSE is marked. About 6 minutes on 2 cores.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch
import typer
from sklearn.linear_model import RidgeCV

from crosssent.features.audio import whisper_mel_extractor, whisper_mel_windows
from crosssent.features.media import read_audio
from crosssent.features.pooling import clip_vector
from crosssent.features.transcribe import whisper_base_folder
from crosssent.features.whisper_encoder import encoder_layers, read_ctranslate2_encoder
from crosssent.metrics import compute_metrics


def _ridge(x_fit: np.ndarray, y_fit: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray) -> dict:
    """MOSI's metrics and the MSE of a ridge probe fitted on one set and scored on another."""
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-6
    ridge = RidgeCV(alphas=np.logspace(-2, 5, 15)).fit((x_fit - mean) / std, y_fit)
    predictions = ridge.predict((x_eval - mean) / std)
    return {**compute_metrics(predictions, y_eval, "mosi"), "mse": float(np.mean((predictions - y_eval) ** 2))}


def main(shared_data: Path) -> None:
    import ctranslate2

    torch.set_num_threads(2)
    folder = whisper_base_folder()
    weights = read_ctranslate2_encoder(folder / "model.bin")
    reference = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    mel_of = whisper_mel_extractor()
    root = shared_data / "ravdess"
    with open(root / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    vectors: list[list[np.ndarray]] = []
    start = time.time()
    with torch.inference_mode():
        for n, row in enumerate(rows):
            path = next((root / "audio").glob(row["id"] + ".*"))
            mels = list(whisper_mel_windows(mel_of, read_audio(path)))  # as the extractors window it
            windows = [encoder_layers(weights, mel) for mel in mels]
            if n == 0:
                expected = np.asarray(reference.encode(ctranslate2.StorageView.from_array(mels[0][None]), to_cpu=True))[0]
                gap = float(np.abs(windows[0][-1].numpy() - expected).max())
                typer.echo(f"last layer against CTranslate2's encode (float32): max abs difference {gap:.1e}")
                if gap > 1e-2:
                    raise SystemExit("error: the torch encoder does not reproduce CTranslate2's; not probing")
            layers = range(len(windows[0]))
            vectors.append([clip_vector(torch.cat([w[layer] for w in windows]).numpy())[0] for layer in layers])
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
