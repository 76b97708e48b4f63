"""Where a RAVDESS model's sign goes wrong: test predictions broken down by the acted emotion.

    python scripts/ravdess_by_emotion.py records/ravdess-minilm/ravdess-egemaps-gate-2 data/ravdess-egemaps \
        --publish docs/results

Reads the committed run records of every variant of one grid dataset (``VARIANT/seedN.json``,
see crosssent.experiments.records), joins their test predictions with the labels of the
imported dataset by clip id, and prints, per variant (every seed's predictions pooled), the
share of each emotion's clips predicted positive and Non0-ACC2 (the sign accuracy over clips
whose label is not zero), with the records' own validation Non0-ACC2 (mean over seeds) beside.
The emotion is the third field of a RAVDESS clip id (``03-01-EE-...``). RAVDESS valence is
positive for calm, happy and surprised, zero for neutral and negative for the rest
(SOURCES.md), so a model that only hears arousal predicts one sign for calm next to sad. A
diagnostic over the test split, never used to choose anything. ``--publish docs/results`` makes
the table the page ``by-emotion-DATASET.md`` there, so the readings link its numbers.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import typer

from crosssent.experiments.records import joined_test_rows, read_record
from crosssent.experiments.report import publish, script_page_head

EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}


def _emotion(clip: str, path: Path) -> str:
    parts = clip.split("-")
    if len(parts) != 7 or parts[2] not in EMOTIONS:
        raise ValueError(f"{path}: clip {clip!r} is not a RAVDESS id (MM-VV-EE-II-SS-RR-AA)")
    return EMOTIONS[parts[2]]


def main(
    dataset_records: Path = typer.Argument(..., help="one grid dataset's records: RECORDS/DATASET (its VARIANT/seedN.json)"),
    data_dir: Path = typer.Argument(..., help="the imported RAVDESS dataset the runs were scored on"),
    publish_to: Path | None = typer.Option(None, "--publish", help="folder of published pages (docs/results)"),
) -> None:
    variants = (
        sorted(p for p in dataset_records.iterdir() if p.is_dir() and any(p.glob("seed*.json")))
        if dataset_records.is_dir()
        else []
    )
    if not variants:
        typer.echo(f"error: {dataset_records}: no VARIANT/seed*.json run records", err=True)
        raise typer.Exit(2)
    header = (
        "variant".ljust(18) + "".join(f"{name:>10}" for name in EMOTIONS.values()) + f"{'Non0-ACC2':>11}{'valid':>7}{'seeds':>7}"
    )
    typer.echo(f"{dataset_records}: share of each emotion's test clips predicted positive (%), every seed pooled")
    typer.echo(header)
    page_rows = []
    for variant in variants:
        positive: dict[str, list[bool]] = defaultdict(list)
        right: list[bool] = []
        valid: list[float] = []
        seeds = sorted(variant.glob("seed*.json"))
        for path in seeds:
            try:
                record = read_record(path)
                rows = joined_test_rows(path, record, data_dir)
                if "acc2_non0" in record["metrics"].get("valid", {}):
                    valid.append(100 * record["metrics"]["valid"]["acc2_non0"])
                for clip, label, prediction in rows:
                    positive[_emotion(clip, path)].append(prediction > 0)
                    if label != 0:
                        right.append((label > 0) == (prediction > 0))
            except ValueError as err:
                typer.echo(f"error: {err}", err=True)
                raise typer.Exit(2) from None
        shares = [f"{100 * sum(positive[e]) / len(positive[e]):.1f}" if positive[e] else "-" for e in EMOTIONS.values()]
        accuracy = f"{100 * sum(right) / max(len(right), 1):.2f}"
        valid_mean = f"{sum(valid) / len(valid):.2f}" if len(valid) == len(seeds) else "-"
        typer.echo(f"{variant.name:18}{''.join(f'{v:>10}' for v in shares)}{accuracy:>11}{valid_mean:>7}{len(seeds):7d}")
        page_rows.append(f"| {variant.name} | {' | '.join(shares)} | {accuracy} | {valid_mean} | {len(seeds)} |")
    if publish_to is not None:
        name = f"by-emotion-{dataset_records.name}"
        page = [
            *script_page_head("Diagnostic", name, "ravdess_by_emotion.py"),
            f"Test predictions of every variant recorded under `{dataset_records}` (every seed pooled), broken down by the "
            "acted emotion: the share of each emotion's clips predicted positive (%). RAVDESS valence is positive for "
            "calm, happy and surprised, zero for neutral and negative for the rest. Non0-ACC2 over the pooled test "
            "clips; valid: the records' own validation Non0-ACC2, mean over seeds. A diagnostic, never used to choose.",
            "",
            f"## {dataset_records.name} (test split)",
            "",
            f"| variant | {' | '.join(EMOTIONS.values())} | Non0-ACC2 | valid Non0-ACC2 | seeds |",
            "|---" * (len(EMOTIONS) + 4) + "|",
            *page_rows,
        ]
        publish("\n".join(page) + "\n", name, publish_to)
        typer.echo(f"published: {publish_to / name}.md", err=True)


if __name__ == "__main__":
    typer.run(main)
