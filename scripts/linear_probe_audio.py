"""Does a dataset's audio stream carry sentiment that reaches the test split? A linear probe.

    python scripts/linear_probe_audio.py data/mosi-clip --backbone minilm

Ridge regressions (penalty chosen by leave-one-out on the training split) on three inputs:
frozen mean-pooled text embeddings, the audio features (averaged over a clip's frames, z-scored
with training statistics), and both side by side. Prints Non0-ACC2 and MAE on the validation and
test splits (MOSI/MOSEI conventions); nothing is trained but the ridge.

A clip without audio frames gets the mean audio (zeros after scaling); the count is printed.

``--audio-norm per-video`` z-scores the audio within each video instead (the video id is the clip
id up to its last ``_``, as in MOSI/MOSEI), which removes what tells one speaker from another;
test videos use their own clips' audio statistics (no labels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import typer
from sklearn.linear_model import RidgeCV

from crosssent.data.dataset import load_dataset
from crosssent.metrics import compute_metrics
from crosssent.model.backbones import load_backbone
from crosssent.model.modeling import masked_mean


def text_embeddings(texts: list[str], backbone: str, *, max_len: int, batch: int = 64) -> np.ndarray:
    """(N, d) mean of the last hidden states over real tokens."""
    model, tokenizer = load_backbone(backbone)
    model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            enc = tokenizer(texts[start : start + batch], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            hidden = model(**enc).last_hidden_state  # (B, L, d)
            parts.append(masked_mean(hidden, enc["attention_mask"].bool()).numpy())  # (B, d)
    return np.concatenate(parts)


def zscore(values: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """(N, d) scaled with the mean/std of the rows in ``fit`` (constant columns left unscaled);
    NaN rows (clips without audio) are ignored in the statistics and come out as zeros."""
    known = fit & ~np.isnan(values).any(1)
    if not known.any():
        return np.zeros_like(values)
    std = values[known].std(0)
    return np.nan_to_num((values - values[known].mean(0)) / np.where(std > 1e-8, std, 1.0), nan=0.0)


def zscore_per_video(values: np.ndarray, ids: list[str]) -> np.ndarray:
    videos = np.array([clip.rsplit("_", 1)[0] for clip in ids])
    out = np.empty_like(values)
    for video in np.unique(videos):
        rows = videos == video
        out[rows] = zscore(values[rows], np.ones(rows.sum(), bool))
    return out


def main(data_dir: Path, backbone: str = "minilm", max_len: int = 50, audio_norm: str = "global") -> None:
    table, meta = load_dataset(data_dir)
    if not meta.audio_dim or meta.task == "sims":
        raise typer.BadParameter(f"{data_dir}: needs an audio stream and MOSI/MOSEI labels")
    split = np.array(table["split"])
    label = np.array(table["label"], dtype=np.float64)
    frames = [np.asarray(a, dtype=np.float64).reshape(-1, meta.audio_dim) for a in table["audio"]]
    audio = np.array([f.mean(0) if len(f) else np.full(meta.audio_dim, np.nan) for f in frames])  # (N, da)
    if silent := sum(len(f) == 0 for f in frames):
        print(f"{silent} clip(s) without audio frames: given the mean audio")
    train = split == "train"
    if audio_norm == "global":
        audio = zscore(audio, train)
    elif audio_norm == "per-video":
        audio = zscore_per_video(audio, list(table["id"]))
    else:
        raise typer.BadParameter(f"--audio-norm {audio_norm!r}: choose global or per-video")
    text = text_embeddings(list(table["text"]), backbone, max_len=max_len)
    for name, x in (("text", text), ("audio", audio), ("text+audio", np.hstack([text, audio]))):
        ridge = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit(x[train], label[train])
        scores = []
        for part in ("valid", "test"):
            rows = split == part
            m = compute_metrics(ridge.predict(x[rows]), label[rows], meta.task)
            scores.append(f"{part} Non0-ACC2 {100 * m['acc2_non0']:.1f} MAE {m['mae']:.3f}")
        print(f"{name:<11} " + " | ".join(scores))


if __name__ == "__main__":
    typer.run(main)
