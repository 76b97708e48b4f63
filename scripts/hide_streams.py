"""Robustness to missing streams: the test metrics of trained models with audio/visual withheld.

    python scripts/hide_streams.py data/mosi-bclstm runs/robustness/mosi-bclstm-crosssent-s*/model \
        --name streams-withheld-mosi-bclstm --publish docs/results

Scores the test split of the dataset with every model folder given (normally the seeds of one
variant): first with every stream, then with each stream the model reads withheld from every
clip, then with all of them withheld (``crosssent evaluate --hide``: the clip is scored as one
whose streams are missing). Prints a page of two Markdown tables: the means over the models, and
the change from "every stream" (mean, and on how many models the metric got better). A stream
whose removal helps is one the model trusts more than it should on this split.
``--publish docs/results`` makes the page ``NAME`` there (a robustness page; the index is
regenerated), so results.md can copy its tables through ``crosssent summary``.
"""

from __future__ import annotations

import itertools
import shlex
import sys
from pathlib import Path

import numpy as np
import typer

from crosssent.experiments.report import format_stat, mean_ci, publish
from crosssent.metrics import LOWER_IS_BETTER, RAW_VALUE_KEYS
from crosssent.model.folder import load_preprocessing
from crosssent.scoring import STREAMS, evaluate_folder

SHOWN = {
    "mosi": ("acc2_non0", "acc7", "mae", "corr"),
    "mosei": ("acc2_non0", "acc7", "mae", "corr"),
    "sims": ("acc2", "acc5", "mae", "corr"),
}
CHANGE_HEADING = "Change from every stream"


def _conditions(prep) -> list[tuple[str, ...]]:
    streams = [m for m in STREAMS if getattr(prep, f"{m}_dim")]
    hidden = [combo for n in range(1, len(streams) + 1) for combo in itertools.combinations(streams, n)]
    return [()] + hidden


def _name(hidden: tuple[str, ...]) -> str:
    return "every stream" if not hidden else "without " + " + ".join(hidden)


def render(
    name: str, command: str, data_dir: Path, models: list[Path], keys: tuple[str, ...], scores: dict[tuple[str, ...], list[dict]]
) -> str:
    """The page: the models' mean ± sample std per condition, then the change from every stream
    (mean; on how many models the metric got better)."""
    conditions = list(scores)
    head = ["| streams | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    means = [
        f"| {_name(hidden)} | " + " | ".join(format_stat(mean_ci([m[key] for m in scores[hidden]]), key) for key in keys) + " |"
        for hidden in conditions
    ]
    changes = []
    for hidden in conditions[1:]:
        cells = []
        for key in keys:
            diff = np.array([h[key] - a[key] for h, a in zip(scores[hidden], scores[()])])
            better = int(np.sum(diff < 0 if key in LOWER_IS_BETTER else diff > 0))
            change = f"{diff.mean():+.3f}" if key in RAW_VALUE_KEYS else f"{diff.mean() * 100:+.2f}"
            cells.append(f"{change} ({better}/{len(diff)})")
        changes.append(f"| {_name(hidden)} | " + " | ".join(cells) + " |")
    page = [
        f"# Robustness `{name}`",
        "",
        f"Command: `{command}`",
        "",
        f"The test split of `{data_dir}` scored by {len(models)} model(s) ({', '.join(f'`{m}`' for m in models)}), "
        "with each stream the models read withheld from every clip (as for clips whose streams are missing).",
        "",
        f"## {data_dir.name} (test split)",  # as experiment pages name a dataset's section
        "",
        "Mean ± sample std over the models:",
        "",
        *head,
        *means,
        "",
        f"## {CHANGE_HEADING}",
        "",
        "Mean change; in brackets, on how many models the metric got better:",
        "",
        *head,
        *changes,
    ]
    return "\n".join(page) + "\n"


def main(
    data_dir: Path = typer.Argument(..., help="the canonical dataset the models were trained on"),
    models: list[Path] = typer.Argument(..., help="exported model folders (RUN_DIR/model), one per seed"),
    name: str = typer.Option("streams-withheld", help="the page's name (docs/results/NAME.md with --publish)"),
    publish_to: Path | None = typer.Option(None, "--publish", help="folder of published pages (docs/results)"),
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
    if conditions is None or len(conditions) == 1:
        typer.echo(f"error: {models[0]}: the model reads no audio or visual stream; nothing to withhold", err=True)
        raise typer.Exit(2)
    command = "python scripts/hide_streams.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    page = render(name, command, data_dir, models, SHOWN[task], scores)
    typer.echo(page)
    if publish_to is not None:
        publish(page, name, publish_to)
        typer.echo(f"published: {publish_to / name}.md", err=True)


if __name__ == "__main__":
    typer.run(main)
