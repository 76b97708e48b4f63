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

from crosssent.evaluation import evaluate_folder, load_exported

SHOWN = {"mosi": ("acc2_non0", "acc7", "mae", "corr"), "mosei": ("acc2_non0", "acc7", "mae", "corr"),
         "sims": ("acc2", "acc5", "mae", "corr")}
LOWER_IS_BETTER = {"mae"}


def _conditions(prep) -> list[tuple[str, ...]]:
    streams = [m for m in ("audio", "visual") if getattr(prep, f"{m}_dim")]
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
            _, _, prep = load_exported(model)
            if conditions is None:
                task, conditions = prep.task, _conditions(prep)
            elif _conditions(prep) != conditions:
                raise ValueError(f"{model}: reads other streams than {models[0]}")
            for hidden in conditions:
                metrics, _ = evaluate_folder(model, data_dir, ("test",), hide=hidden)
                scores.setdefault(hidden, []).append(metrics["test"])
        except ValueError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2)
    if len(conditions) == 1:
        typer.echo(f"error: {models[0]}: the model reads no audio or visual stream; nothing to withhold", err=True)
        raise typer.Exit(2)
    keys = SHOWN[task]
    typer.echo(f"Test split of {data_dir}, {len(models)} model(s); mean ± sample std over the models\n")
    typer.echo("| streams | " + " | ".join(keys) + " |")
    typer.echo("|---" * (len(keys) + 1) + "|")
    for hidden in conditions:
        cells = []
        for key in keys:
            values = np.array([m[key] for m in scores[hidden]])
            scale = 1 if key in ("mae", "corr") else 100
            spread = f" ± {values.std(ddof=1) * scale:.{3 if scale == 1 else 2}f}" if len(values) > 1 else ""
            cells.append(f"{values.mean() * scale:.{3 if scale == 1 else 2}f}{spread}")
        typer.echo(f"| {_name(hidden)} | " + " | ".join(cells) + " |")
    typer.echo("\nChange from every stream (mean; models on which it is better):\n")
    typer.echo("| streams | " + " | ".join(keys) + " |")
    typer.echo("|---" * (len(keys) + 1) + "|")
    for hidden in conditions[1:]:
        cells = []
        for key in keys:
            diff = np.array([h[key] - a[key] for h, a in zip(scores[hidden], scores[()])])
            better = int(np.sum(diff < 0 if key in LOWER_IS_BETTER else diff > 0))
            scale = 1 if key in ("mae", "corr") else 100
            cells.append(f"{diff.mean() * scale:+.{3 if scale == 1 else 2}f} ({better}/{len(diff)})")
        typer.echo(f"| {_name(hidden)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    typer.run(main)
