"""How large is what GMRA adds to the text states? For each exported crosssent model: the median
over the first test clips' tokens (clip-level audio data) of |g * Z| / |h| (the gated A/V term against the hidden state
it is added to) and the mean gate.

    .venv/bin/python scripts/gmra_injection_size.py data/ravdess-whisper \\
        runs/experiments/ravdess-minilm/runs/ravdess-whisper/crosssent_layer3/seed0/model \\
        runs/experiments/ravdess-minilm/runs/ravdess-whisper/crosssent/seed0/model
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import typer

from crosssent.data.dataset import load_dataset
from crosssent.model.folder import load_model_folder


def main(data: Path, models: list[Path], clips: int = 64) -> None:
    table, meta = load_dataset(data)
    if meta.alignment != "clip":
        typer.echo(f"error: {data}: needs clip-level streams (alignment {meta.alignment})", err=True)
        raise typer.Exit(2)
    rows = [i for i, split in enumerate(table["split"]) if split == "test"][:clips]
    for folder in models:
        model, tokenizer, prep = load_model_folder(folder)
        if model.fusion is None or model.config.variant != "crosssent":
            typer.echo(f"error: {folder}: not a crosssent model (variant {model.config.variant})", err=True)
            raise typer.Exit(2)
        tokens = tokenizer(
            [table["text"][i] for i in rows], padding=True, truncation=True, max_length=prep.max_len, return_tensors="pt"
        )
        audio = torch.from_numpy(np.stack([np.asarray(table["audio"][i], dtype=np.float32) for i in rows]))  # (B, 1, da)
        audio_mask = torch.ones(audio.shape[:2], dtype=torch.bool)
        seen: list[tuple[float, float]] = []

        def measure(fusion, args, inputs, result, seen=seen):  # a forward hook: GMRA's input, its gates
            hidden = args[0]
            z = fusion._cross_attend_folded(
                hidden, fusion._streams(*(inputs[k] for k in ("audio", "audio_mask", "visual", "visual_mask")))
            )
            real = inputs["text_mask"].bool()
            added = (result.gates * z)[real].norm(dim=-1) / hidden[real].norm(dim=-1)
            seen.append((float(added.median()), float(result.gates[real].mean())))

        hook = model.fusion.register_forward_hook(measure, with_kwargs=True)
        with torch.inference_mode():
            model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], audio=audio, audio_mask=audio_mask)
        hook.remove()
        ratio, gate = seen[0]
        typer.echo(f"{folder}: GMRA after layer {model.config.inject_layer}, median |g*Z|/|h| {ratio:.3f}, mean gate {gate:.3f}")


if __name__ == "__main__":
    typer.run(main)
