"""Which layer of Whisper base's encoder carries RAVDESS's emotion best? A ridge probe per layer.

    .venv/bin/python scripts/probe_whisper_layers.py ../shared/data --publish docs/results

Runs Whisper base's encoder in torch (crosssent.features.whisper_encoder, as the ``whisper-layerN``
audio extractors do; float32; checked against CTranslate2's own ``encode`` on the first clip), keeps
every layer's states, and pools each clip per layer into mean and std (1024 values, as the
``whisper`` extractor's clip vectors); spans of layers (``whisper-layersA-B``) put those clip
vectors side by side. Each is pooled twice: over every frame, as the extractors do, and over the
frames inside speech only (Silero VAD, the model faster-whisper ships, segments padded by 100 ms),
to ask whether the silence around a clip dilutes the voice.

Per row, a ridge regression (penalty by leave-one-out, z-scored inputs): fitted on actors 1-14
and scored on the validation actors 15-16, which choose the row (lowest validation MSE); then
refitted on actors 1-16 and scored on the test actors 17-20, as scripts/probe_voice.py does.
Prints the page (two tables); ``--publish docs/results`` makes it the page
``probe-whisper-layers`` there (and regenerates the index). About 7 minutes on 2 cores.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch
import typer
from sklearn.linear_model import RidgeCV

from crosssent.experiments.report import publish, script_page_head
from crosssent.features.audio import whisper_mel_extractor, whisper_mel_windows
from crosssent.features.media import SAMPLE_RATE, read_audio
from crosssent.features.pooling import clip_vector
from crosssent.features.transcribe import whisper_base_folder
from crosssent.features.whisper_encoder import encoder_layers, read_ctranslate2_encoder
from crosssent.metrics import compute_metrics

PAGE = "probe-whisper-layers"
SPANS = ((1, 2), (1, 3), (1, 6))  # besides each layer alone
POOLINGS = {"every": "Clip vectors over every frame", "speech": "Clip vectors over the speech frames (Silero VAD)"}


def _ridge(x_fit: np.ndarray, y_fit: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray) -> dict:
    """MOSI's metrics and the MSE of a ridge probe fitted on one set and scored on another."""
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-6
    ridge = RidgeCV(alphas=np.logspace(-2, 5, 15)).fit((x_fit - mean) / std, y_fit)
    predictions = ridge.predict((x_eval - mean) / std)
    return {**compute_metrics(predictions, y_eval, "mosi"), "mse": float(np.mean((predictions - y_eval) ** 2))}


def speech_frames(audio: np.ndarray, frames: int, rate: float = 50.0) -> np.ndarray:
    """Which of ``frames`` encoder frames (``rate`` a second) lie inside speech, by Silero VAD;
    every frame when it finds none."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    centres = (np.arange(frames) + 0.5) / rate * SAMPLE_RATE  # in samples
    inside = np.zeros(frames, dtype=bool)
    for span in get_speech_timestamps(audio, VadOptions(speech_pad_ms=100)):
        inside |= (centres >= span["start"]) & (centres < span["end"])
    return inside if inside.any() else np.ones(frames, dtype=bool)


def _table(rows: list[tuple[str, dict, dict]]) -> list[str]:
    chosen = min(rows, key=lambda r: r[1]["mse"])[0]
    lines = ["| layers | valid MSE | valid Corr | test Corr | test Non0-ACC2 | test MAE |", "|---|---|---|---|---|---|"]
    for name, on_valid, on_test in rows:
        mark = " (chosen on validation)" if name == chosen else ""
        lines.append(
            f"| {name}{mark} | {on_valid['mse']:.3f} | {on_valid['corr']:.3f} | {on_test['corr']:.3f} | "
            f"{100 * on_test['acc2_non0']:.1f} | {on_test['mae']:.3f} |"
        )
    return lines


def main(
    shared_data: Path,
    publish_to: Path | None = typer.Option(None, "--publish", help="folder of published pages (docs/results)"),
) -> None:
    import ctranslate2

    torch.set_num_threads(2)
    folder = whisper_base_folder()
    weights = read_ctranslate2_encoder(folder / "model.bin")
    reference = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    mel_of = whisper_mel_extractor()
    root = shared_data / "ravdess"
    with open(root / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    vectors: dict[str, list[list[np.ndarray]]] = {pooling: [] for pooling in POOLINGS}
    speech_share = []
    start = time.time()
    with torch.inference_mode():
        for n, row in enumerate(rows):
            path = next((root / "audio").glob(row["id"] + ".*"))
            audio = read_audio(path)
            mels = list(whisper_mel_windows(mel_of, audio))  # as the extractors window it
            windows = [encoder_layers(weights, mel) for mel in mels]
            if n == 0:
                expected = np.asarray(reference.encode(ctranslate2.StorageView.from_array(mels[0][None]), to_cpu=True))[0]
                gap = float(np.abs(windows[0][-1].numpy() - expected).max())
                typer.echo(f"last layer against CTranslate2's encode (float32): max abs difference {gap:.1e}", err=True)
                if gap > 1e-2:
                    raise SystemExit("error: the torch encoder does not reproduce CTranslate2's; not probing")
            states = [torch.cat([w[layer] for w in windows]).numpy() for layer in range(len(windows[0]))]  # (T, 512) each
            inside = speech_frames(audio, len(states[0]))
            speech_share.append(inside.mean())
            vectors["every"].append([clip_vector(s)[0] for s in states])
            vectors["speech"].append([clip_vector(s[inside])[0] for s in states])
            if (n + 1) % 200 == 0:
                typer.echo(f"  {n + 1}/{len(rows)} clips, {time.time() - start:.0f} s", err=True)
    y = np.array([float(r["valence"]) for r in rows])
    actor = np.array([int(r["actor"]) for r in rows])
    train, valid, test = actor <= 14, (actor >= 15) & (actor <= 16), actor >= 17
    layers = len(vectors["every"][0])
    page = [
        *script_page_head("Probe", PAGE, "probe_whisper_layers.py"),
        f"RAVDESS ({len(rows)} clips), Whisper base's encoder in torch float32, clip vectors of mean and std per "
        "layer (a span: the layers' vectors side by side). Ridge regression, penalty by leave-one-out: fitted "
        "on actors 1-14 and scored on the validation actors 15-16 (which choose), then refitted on actors "
        "1-16 and scored on the test actors 17-20. Speech frames: inside Silero VAD's segments padded by "
        f"100 ms, {100 * float(np.mean(speech_share)):.1f} % of the frames on average. "
        f"{time.time() - start:.0f} s.",
    ]
    for pooling, heading in POOLINGS.items():
        x_of = {str(k + 1): np.array([v[k] for v in vectors[pooling]]) for k in range(layers)}
        for first, last in SPANS:
            x_of[f"{first}-{last}"] = np.concatenate([x_of[str(k)] for k in range(first, last + 1)], axis=1)
        results = []
        for name, x in x_of.items():
            on_valid = _ridge(x[train], y[train], x[valid], y[valid])
            on_test = _ridge(x[train | valid], y[train | valid], x[test], y[test])
            results.append((name, on_valid, on_test))
        page += ["", f"## {heading}", "", *_table(results)]
    report = "\n".join(page) + "\n"
    typer.echo(report)
    if publish_to is not None:
        publish(report, PAGE, publish_to)
        typer.echo(f"published: {publish_to / PAGE}.md", err=True)


if __name__ == "__main__":
    typer.run(main)
