"""Robustness to missing streams: the test metrics of trained models with audio/visual withheld.

    python scripts/hide_streams.py data/mosi-bclstm runs/robustness/mosi-bclstm-crosssent-s*/model

Scores the test split of the dataset with every model folder given (normally the seeds of one
variant): first with every stream, then with each stream the model reads withheld from every
clip, then with all of them withheld (``crosssent evaluate --hide``: the clip is scored as one
whose streams are missing). Prints a Markdown table of the means over the models, and the change
from "every stream" (mean, and on how many models the metric got better). A stream whose removal
helps is one the model trusts more than it should on this split.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import typer

from crosssent.experiments.report import format_stat, mean_ci
from crosssent.metrics import LOWER_IS_BETTER, RAW_VALUE_KEYS
from crosssent.model.folder import load_preprocessing
from crosssent.scoring import STREAMS, evaluate_folder

SHOWN = {
    "mosi": ("acc2_non0", "acc7", "mae", "corr"),
    "mosei": ("acc2_non0", "acc7", "mae", "corr"),
    "sims": ("acc2", "acc5", "mae", "corr"),
}


def _conditions(prep) -> list[tuple[str, ...]]:
    streams = [m for m in STREAMS if getattr(prep, f"{m}_dim")]
    hidden = [combo for n in range(1, len(streams) + 1) for combo in itertools.combinations(streams, n)]
    return [()] + hidden


def _name(hidden: tuple[str, ...]) -> str:
    return "every stream" if not hidden else "without " + " + ".join(hidden)


def main(
    data_dir: Path = typer.Argument(..., help="the canonical dataset the models were trained on"),
    models: list[Path] = typer.Argument(..., help="exported model folders (RUN_DIR/model), one per seed"),
) -> None:
    scores: dict[tuple[str, ...], list[dict[str, float]]] = {}
    task, conditions = None, None
    for model in models:
        try:
            prep = load_preprocessing(model)
            if conditions is None:
                task, conditions = prep.task, _conditions(prep)
            elif _conditions(prep) != conditions:
                raise ValueError(f"{model}: reads other streams than {models[0]}")
            for hidden in conditions:
                metrics, _ = evaluate_folder(model, data_dir, ("test",), hide=hidden)
                scores.setdefault(hidden, []).append(metrics["test"])
        except ValueError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
    if len(conditions) == 1:
        typer.echo(f"error: {models[0]}: the model reads no audio or visual stream; nothing to withhold", err=True)
        raise typer.Exit(2)
    keys = SHOWN[task]
    typer.echo(f"Test split of {data_dir}, {len(models)} model(s); mean ± sample std over the models\n")
    typer.echo("| streams | " + " | ".join(keys) + " |")
    typer.echo("|---" * (len(keys) + 1) + "|")
    for hidden in conditions:
        cells = [format_stat(mean_ci([m[key] for m in scores[hidden]]), key) for key in keys]
        typer.echo(f"| {_name(hidden)} | " + " | ".join(cells) + " |")
    typer.echo("\nChange from every stream (mean; models on which it is better):\n")
    typer.echo("| streams | " + " | ".join(keys) + " |")
    typer.echo("|---" * (len(keys) + 1) + "|")
    for hidden in conditions[1:]:
        cells = []
        for key in keys:
            diff = np.array([h[key] - a[key] for h, a in zip(scores[hidden], scores[()])])
            better = int(np.sum(diff < 0 if key in LOWER_IS_BETTER else diff > 0))
            change = f"{diff.mean():+.3f}" if key in RAW_VALUE_KEYS else f"{diff.mean() * 100:+.2f}"
            cells.append(f"{change} ({better}/{len(diff)})")
        typer.echo(f"| {_name(hidden)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    typer.run(main)
