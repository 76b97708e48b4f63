"""A random sample of one split's transcripts and labels, as a CSV (id,text,label).

    python scripts/sample_transcripts.py data/sims-text --split test --n 80 --seed 0 --out official.csv

For checks that need clips read aloud (scripts/synthesize_mandarin.py) and recognised again
(crosssent transcribe), then compared with these transcripts (scripts/compare_transcripts.py).
The sample is the first ``n`` clips of the split after a shuffle by Python's ``random.Random(seed)``,
so the same arguments always give the same clips.
"""

from __future__ import annotations

import random
from pathlib import Path

import typer

from crosssent.atomic_files import write_csv_atomic
from crosssent.data.dataset import SPLITS, load_dataset


def main(
    data_dir: Path = typer.Argument(..., help="an imported dataset folder"),
    out: Path = typer.Option(..., help="CSV to write: id,text,label"),
    split: str = typer.Option("test", help="train, valid or test"),
    n: int = typer.Option(80, min=1, help="clips in the sample"),
    seed: int = typer.Option(0, help="seed of the shuffle"),
) -> None:
    if split not in SPLITS:
        raise SystemExit(f"error: unknown split {split!r}; choose from {', '.join(SPLITS)}")
    try:
        table, _ = load_dataset(data_dir)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    rows = [(r["id"], r["text"], r["label"]) for r in table if r["split"] == split]
    if len(rows) < n:
        raise SystemExit(f"error: {data_dir}: the {split} split has {len(rows)} clips, fewer than {n}")
    random.Random(seed).shuffle(rows)
    write_csv_atomic(out, ["id", "text", "label"], rows[:n])
    print(f"wrote {out} ({n} of {len(rows)} {split} clips, seed {seed})")


if __name__ == "__main__":
    typer.run(main)
