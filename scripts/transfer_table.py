"""A transfer table: models trained on one dataset (one per seed), scored on their own test split
and, with ``crosssent evaluate --transfer``'s rules, on other datasets' test splits.

    .venv/bin/python scripts/transfer_table.py --model runs/mosi-minilm/model --model runs/mosi-minilm-s1/model \
        --model runs/mosi-minilm-s2/model --data MOSI=data/mosi-clip --data MOSEI=data/mosei-text \
        --data CH-SIMS-en=data/sims-text-en

The first ``--data`` is the models' own dataset (scored as it is); every other is scored with
its missing streams left empty and the predictions mapped linearly through 0 from the models'
label range to its own, under its own metric convention. Prints one Markdown row: per dataset
the mean and 95 % t interval over the models of Corr and of the binary accuracy (Non0-ACC2 on
MOSI's scale, ACC2 on CH-SIMS's).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import stats

from crosssent.scoring import evaluate_folder


def interval(values: list[float], digits: int = 3) -> str:
    """Mean and 95 % t interval half-width."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return f"{mean:.{digits}f} (one model)"
    half = float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values)))
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="exported model folder (one per seed)")
    parser.add_argument("--data", action="append", required=True, help="NAME=DATASET; the first is the models' own")
    args = parser.parse_args()
    datasets = []
    for item in args.data:
        name, _, path = item.partition("=")
        if not path:
            parser.error(f"--data {item}: expected NAME=DATASET")
        datasets.append((name, Path(path)))
    cells = []
    for n, (name, path) in enumerate(datasets):
        corr, accuracy = [], []
        for model in args.model:
            metrics, _ = evaluate_folder(model, path, ("test",), transfer=n > 0)
            test = metrics["test"]
            corr.append(test["corr"])
            accuracy.append(100 * test.get("acc2_non0", test.get("acc2", float("nan"))))
        key = "Non0-ACC2" if "acc2_non0" in test else "ACC2"
        cells.append(f"Corr {interval(corr)}, {key} {interval(accuracy, 2)}")
        print(f"{name}: " + ", ".join(f"{c:.4f}" for c in corr), flush=True)
    print("| trained on | " + " | ".join(name for name, _ in datasets) + " |")
    print("|---|" + "---|" * len(datasets))
    print(f"| {datasets[0][0]} ({len(args.model)} models) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
