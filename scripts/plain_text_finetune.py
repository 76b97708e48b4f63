"""The issue-#4 floor recipe as a plain PyTorch loop, outside CrossSent's pipeline.

    python scripts/plain_text_finetune.py data/mosi-clip --backbone mpnet --seed 0 --out runs/floor/mpnet-0.json

Text only: mean-pooled encoder tokens -> MLP -> score, MSE, AdamW (encoder ``--lr-encoder``,
head ``--lr-head``, weight decay 0.01), batch 32, max length 50, constant rates, every epoch
run, the epoch with the best validation MSE kept; the test split is scored once, at the end.
``--out`` gets the metrics, the validation MSE of every epoch and the kept model's predictions.
It shares only the dataset reader, the backbone loader and the metric code with CrossSent (no
Lightning, no collate or cache, no CrossSent model), so that comparing its numbers with the
``floor_recipe`` variant of ``configs/experiments/mosi-*.yaml`` tells whether our training
pipeline, rather than the recipe, is what separates us from the floor quoted in the issue.
"""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path

import numpy as np
import torch
import typer
from torch import nn

from crosssent.atomic_files import write_json_atomic
from crosssent.data.dataset import load_dataset
from crosssent.metrics import compute_metrics
from crosssent.model.backbones import load_backbone
from crosssent.model.modeling import masked_mean


class TextRegressor(nn.Module):
    def __init__(self, *, encoder: nn.Module, head_hidden: int) -> None:
        super().__init__()
        self.encoder = encoder
        width = encoder.config.hidden_size
        self.head = nn.Sequential(nn.Linear(width, head_hidden), nn.ReLU(), nn.Linear(head_hidden, 1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B,)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, h)
        return self.head(masked_mean(hidden, attention_mask.bool())).squeeze(-1)


def predict(model: TextRegressor, tokenizer, texts: list[str], *, max_len: int, batch: int = 64) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            enc = tokenizer(texts[start : start + batch], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            out.append(model(enc["input_ids"], enc["attention_mask"]).numpy())
    return np.concatenate(out).astype(np.float64)


def main(
    data_dir: Path,
    backbone: str = "mpnet",
    seed: int = 0,
    epochs: int = 5,
    batch_size: int = 32,
    max_len: int = 50,
    lr_encoder: float = 2e-5,
    lr_head: float = 1e-3,
    head_hidden: int = 128,
    text_prefix: str = typer.Option("", help='put before every transcript, e.g. "query: " (e5 was trained with it)'),
    out: Path | None = None,
) -> None:
    table, meta = load_dataset(data_dir)
    split = np.array(table["split"])
    texts, ids = [text_prefix + t for t in table["text"]], list(table["id"])
    labels = np.array(table["label"], dtype=np.float64)
    rows = {part: np.flatnonzero(split == part) for part in ("train", "valid", "test")}
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    encoder, tokenizer = load_backbone(backbone, seed=seed)
    model = TextRegressor(encoder=encoder, head_hidden=head_hidden)
    optimizer = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": lr_encoder},
            {"params": model.head.parameters(), "lr": lr_head},
        ],
        weight_decay=0.01,
    )
    order = torch.Generator().manual_seed(seed)
    best_state, curve = None, []  # curve: validation MSE after each epoch
    for epoch in range(1, epochs + 1):
        model.train()
        shuffled = rows["train"][torch.randperm(len(rows["train"]), generator=order).numpy()]
        for start in range(0, len(shuffled), batch_size):
            picked = shuffled[start : start + batch_size]
            enc = tokenizer([texts[i] for i in picked], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            loss = nn.functional.mse_loss(
                model(enc["input_ids"], enc["attention_mask"]), torch.tensor(labels[picked], dtype=torch.float32)
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        valid_mse = float(
            np.mean((predict(model, tokenizer, [texts[i] for i in rows["valid"]], max_len=max_len) - labels[rows["valid"]]) ** 2)
        )
        print(f"epoch {epoch}/{epochs}: valid MSE {valid_mse:.4f}", file=sys.stderr, flush=True)
        if valid_mse < min(curve, default=float("inf")):
            best_state = copy.deepcopy(model.state_dict())
        curve.append(valid_mse)
    model.load_state_dict(best_state)
    best = int(np.argmin(curve))  # the first epoch with the lowest MSE: the one kept above
    result = {
        "backbone": backbone,
        "seed": seed,
        "text_prefix": text_prefix,
        "best_epoch": best + 1,
        "valid_mse": curve[best],
        "valid_mse_per_epoch": curve,
        "predictions": {},
    }
    for part in ("valid", "test"):
        pred = predict(model, tokenizer, [texts[i] for i in rows[part]], max_len=max_len)
        result[part] = compute_metrics(pred, labels[rows[part]], meta.task)
        result["predictions"][part] = {ids[i]: float(p) for i, p in zip(rows[part], pred)}
    keys = ("acc2_non0", "acc7", "mae", "corr") if meta.task != "sims" else ("acc2", "acc5", "mae", "corr")
    for part in ("valid", "test"):
        print(f"{part}: " + " ".join(f"{k} {result[part][k]:.4f}" for k in keys))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, result)


if __name__ == "__main__":
    typer.run(main)
