"""Statistics and reports of an experiment grid (``OUT/results.{md,csv,json}``).

Per dataset and variant: mean ± std and a 95% t confidence interval of every test metric over
seeds (validation MSE too), and paired comparisons of ``crosssent`` against every other variant
(and any ``extra_pairs``): a paired t-test over seeds and a paired bootstrap over test clips
(resampling clips, averaging the metric difference over seeds). Only finished runs are read;
missing cells are listed, never guessed. A search (``report_test: false``) shows validation
numbers only. ``publish`` puts a report into a Markdown document between markers.
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
import re
import shlex
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from crosssent.atomic_files import write_bytes_atomic, write_json_atomic, write_text_atomic
from crosssent.experiments.config import ExperimentConfig, run_dir
from crosssent.experiments.figures import figure_name, write_figures
from crosssent.experiments.records import run_task
from crosssent.metrics import RAW_VALUE_KEYS, compute_metrics
from crosssent.provenance import code_summary
from crosssent.train.run_dir import RunDir

HEADLINE = {
    "mosi": ("acc2_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr"),
    "mosei": ("acc2_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr"),
    "sims": ("acc2", "f1", "acc3", "acc5", "mae", "corr"),
}


# ------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------
def mean_ci(values: list[float]) -> dict[str, float]:
    """Mean, sample std and a 95% t confidence interval (NaN bounds with one value)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def _predictions(target: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    rows = RunDir(target).read_predictions("test")
    return [r[0] for r in rows], np.array([r[1] for r in rows]), np.array([r[2] for r in rows])


def paired_bootstrap(
    labels: np.ndarray,
    preds_a: list[np.ndarray],
    preds_b: list[np.ndarray],
    task: str,
    keys: tuple[str, ...],
    *,
    samples: int,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Resample test clips (the same clips for every seed and both systems); the statistic is
    the metric difference A - B averaged over seeds. Two-sided p-value of "no difference"."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    observed = {
        k: float(
            np.mean([compute_metrics(a, labels, task)[k] - compute_metrics(b, labels, task)[k] for a, b in zip(preds_a, preds_b)])
        )
        for k in keys
    }
    draws: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        y = labels[idx]
        diffs = [(compute_metrics(a[idx], y, task), compute_metrics(b[idx], y, task)) for a, b in zip(preds_a, preds_b)]
        for k in keys:
            draws[k].append(float(np.mean([ma[k] - mb[k] for ma, mb in diffs])))
    result = {}
    for k in keys:
        d = np.asarray(draws[k])
        d = d[np.isfinite(d)]
        # (count + 1) / (samples + 1): a bootstrap never proves p = 0
        tail = min((d <= 0).sum(), (d >= 0).sum())
        p = float(min(1.0, 2 * (tail + 1) / (len(d) + 1))) if len(d) else float("nan")
        result[k] = {
            "diff": observed[k],
            "ci_low": float(np.percentile(d, 2.5)) if len(d) else float("nan"),
            "ci_high": float(np.percentile(d, 97.5)) if len(d) else float("nan"),
            "p": p,
        }
    return result


def _paired_t(a: list[float], b: list[float]) -> float:
    if len(a) < 2 or np.allclose(np.subtract(a, b), np.subtract(a, b)[0]):
        return float("nan")
    return float(stats.ttest_rel(a, b).pvalue)


# ------------------------------------------------------------------------------------------
# reports
# ------------------------------------------------------------------------------------------
def collect(config: ExperimentConfig, out: Path) -> dict[str, Any]:
    """Aggregate finished runs; unfinished cells are listed, never guessed."""
    results: dict[str, Any] = {}
    for dataset in config.datasets:
        per_variant: dict[str, Any] = {}
        for variant in config.variants:
            seeds = config.seeds_of(variant)
            folders = {s: RunDir(run_dir(out, dataset, variant, s)) for s in seeds}
            finished = [s for s in seeds if folders[s].is_finished()]
            if not finished:
                continue
            runs = {s: folders[s].read_metrics() for s in finished}
            info = {s: folders[s].read_run_info() for s in finished}
            entry: dict[str, Any] = {
                "seeds": finished,
                "missing_seeds": [s for s in seeds if s not in finished],
                "valid": {k: mean_ci([runs[s]["valid"][k] for s in finished]) for k in runs[finished[0]]["valid"]},
                "valid_per_seed": {k: [runs[s]["valid"][k] for s in finished] for k in runs[finished[0]]["valid"]},
                "valid_mse": mean_ci([info[s]["best_valid_mse"] for s in finished]),
                "valid_mse_per_seed": [info[s]["best_valid_mse"] for s in finished],
                "wall_seconds": float(sum(info[s]["wall_seconds"] for s in finished)),
                # resumed before the run clock was carried through checkpoints: wall time of the last part only
                "partial_time_runs": sum(
                    bool(info[s].get("resumed")) and "wall_seconds_before_resume" not in info[s] for s in finished
                ),
                "code": [code_summary(info[s].get("software")) for s in finished],
            }
            if config.report_test:  # a search keeps test numbers (gates too: measured on test) out
                test_keys = list(runs[finished[0]]["test"])
                entry["test"] = {k: mean_ci([runs[s]["test"][k] for s in finished]) for k in test_keys}
                entry["test_per_seed"] = {k: [runs[s]["test"][k] for s in finished] for k in test_keys}
                entry["fusion"] = [info[s].get("fusion") for s in finished]
            per_variant[variant] = entry
        results[dataset] = per_variant
    return results


def _code_line(results: dict[str, Any]) -> str:
    counts = Counter(code for per_variant in results.values() for r in per_variant.values() for code in r["code"])
    return ", ".join(f"{code} ({n} run{'s' if n > 1 else ''})" for code, n in sorted(counts.items()))


def _task(out: Path, dataset: str, per_variant: dict[str, Any]) -> str:
    variant, r = next(iter(per_variant.items()))
    return run_task(run_dir(out, dataset, variant, r["seeds"][0]))


def _paired(
    config: ExperimentConfig, out: Path, dataset: str, per_variant: dict[str, Any], a: str, b: str, task: str
) -> dict[str, Any] | None:
    """Variant ``a`` minus variant ``b`` on the seeds both have: paired t over seeds and a
    paired bootstrap over test clips. None when they share no seed."""
    ra, rb = per_variant[a], per_variant[b]
    common = [s for s in ra["seeds"] if s in rb["seeds"]]
    if not common:
        return None
    keys = HEADLINE[task]
    entry: dict[str, Any] = {"seeds": common, "task": task, "mean_diff": {}, "paired_t_p": {}}
    for k in keys:
        xa = [ra["test_per_seed"][k][ra["seeds"].index(s)] for s in common]
        xb = [rb["test_per_seed"][k][rb["seeds"].index(s)] for s in common]
        entry["mean_diff"][k] = float(np.mean(np.subtract(xa, xb)))
        entry["paired_t_p"][k] = _paired_t(xa, xb)
    if config.bootstrap:
        loaded_a = [_predictions(run_dir(out, dataset, a, s)) for s in common]
        loaded_b = [_predictions(run_dir(out, dataset, b, s)) for s in common]
        if any(x[0] != loaded_a[0][0] for x in loaded_a + loaded_b):
            raise ValueError(f"{dataset}: test clips differ between runs; cannot pair them")
        entry["bootstrap"] = paired_bootstrap(
            loaded_a[0][1], [x[2] for x in loaded_a], [x[2] for x in loaded_b], task, keys, samples=config.bootstrap
        )
    return entry


def _compare_pairs(
    config: ExperimentConfig, out: Path, results: dict[str, Any], pairs: Callable[[dict[str, Any]], list[tuple[str, str, str]]]
) -> dict[str, Any]:
    """{dataset: {name: entry}} for the (a, b, name) pairs that ``pairs`` picks from a dataset's
    finished variants; a dataset with nothing to pair is left out."""
    found: dict[str, Any] = {}
    if not config.report_test:
        return found
    for dataset, per_variant in results.items():
        wanted = pairs(per_variant)
        if not wanted:
            continue
        task = _task(out, dataset, per_variant)  # read once per dataset, not per pair
        for a, b, name in wanted:
            entry = _paired(config, out, dataset, per_variant, a, b, task)
            if entry is not None:
                found.setdefault(dataset, {})[name] = entry
    return found


def compare(config: ExperimentConfig, out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """crosssent minus every other variant: {dataset: {variant: entry}}."""
    return _compare_pairs(
        config,
        out,
        results,
        lambda per_variant: [("crosssent", v, v) for v in per_variant if v != "crosssent"] if "crosssent" in per_variant else [],
    )


def compare_extra(config: ExperimentConfig, out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """The ``extra_pairs``: {dataset: {"A - B": entry}}."""
    return _compare_pairs(
        config,
        out,
        results,
        lambda per_variant: [(a, b, f"{a} - {b}") for a, b in config.extra_pairs if a in per_variant and b in per_variant],
    )


def format_stat(stat: dict[str, float], key: str) -> str:
    """A ``mean_ci`` result as reports print it: % for shares of clips, raw for RAW_VALUE_KEYS."""
    scale = 1.0 if key in RAW_VALUE_KEYS else 100.0
    if stat["n"] == 1:
        return f"{stat['mean'] * scale:.2f}" if scale == 100 else f"{stat['mean']:.3f}"
    if scale == 100:
        return f"{stat['mean'] * 100:.2f} ± {stat['std'] * 100:.2f}"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def _comparison_rows(buf: io.StringIO, entries: dict[str, Any], keys: tuple[str, ...], first_column: str) -> None:
    buf.write(f"| {first_column} | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys) + "\n")
    for name, c in entries.items():
        cells = []
        for k in keys:
            boot = c.get("bootstrap", {}).get(k)
            diff = c["mean_diff"][k]  # mean over seeds of the per-seed difference
            shown = f"{diff:+.3f}" if k in RAW_VALUE_KEYS else f"{diff * 100:+.2f}"
            pb = f"{boot['p']:.3f}" if boot else "–"
            pt = c["paired_t_p"][k]
            pt = "–" if math.isnan(pt) else f"{pt:.3f}"  # undefined: one shared seed, or zero spread of the differences
            cells.append(f"{shown} (p {pt} / {pb})")
        buf.write(f"| {name} | " + " | ".join(cells) + " |\n")


def headline_keys(results: dict[str, Any], split: str) -> dict[str, tuple[str, ...]]:
    """The headline metrics of every dataset that has finished runs (its metric convention
    read from the keys its runs report)."""
    return {
        dataset: HEADLINE["sims" if "acc2" in next(iter(per_variant.values()))[split] else "mosi"]
        for dataset, per_variant in results.items()
        if per_variant
    }


def render_markdown(
    config: ExperimentConfig,
    results: dict[str, Any],
    comparisons: dict[str, Any],
    meta: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> str:
    extra = extra or {}
    buf = io.StringIO()
    buf.write(f"# Experiment `{config.name}`\n\n")
    buf.write(
        f"Command: `{meta['command']}`  \nHardware: {meta['hardware']}; grid wall time this invocation: "
        f"{meta['wall_seconds']:.0f} s; summed run time: {meta['run_seconds']:.0f} s"
        + (
            f" ({meta['partial_time_runs']} run(s) resumed by an older version count only their last part)"
            if meta.get("partial_time_runs")
            else ""
        )
        + ".  \n"
    )
    buf.write(f"Code the runs were made with: {_code_line(results) or 'no runs yet'}.\n\n")
    split = "test" if config.report_test else "valid"
    if config.report_test:
        buf.write(
            "Values: mean ± sample std over seeds (accuracies and F1 in %); 95% t intervals are in "
            "results.json / results.csv. Model selection on validation MSE only.\n"
        )
    else:
        buf.write(
            "Search report: VALIDATION metrics only (mean ± sample std over seeds; the test split "
            "is not shown, so it cannot steer the choice).\n"
        )
    for dataset, keys in headline_keys(results, split).items():
        per_variant = results[dataset]
        buf.write(f"\n## {dataset} ({'test' if config.report_test else 'validation'} split)\n\n")
        buf.write("| variant | seeds | " + " | ".join(keys) + " | valid MSE |\n")
        buf.write("|---|---|" + "---|" * len(keys) + "---|\n")
        for variant, r in per_variant.items():
            missing = f" (missing {r['missing_seeds']})" if r["missing_seeds"] else ""
            cells = " | ".join(format_stat(r[split][k], k) for k in keys)
            buf.write(f"| {variant} | {len(r['seeds'])}{missing} | {cells} | {format_stat(r['valid_mse'], 'mae')} |\n")
        not_run = [v for v in config.variants if v not in per_variant]  # no finished run: no row to show
        if not_run:
            buf.write("\nNo finished run yet: " + ", ".join(f"`{v}` (seeds {config.seeds_of(v)})" for v in not_run) + "\n")
        buf.write(f"\n![every seed of every variant on {dataset}]({figure_name(config.name, dataset)})\n")
        for label, values in config.quoted.get(dataset, {}).items():
            shown = ", ".join(f"{k} {format_stat(mean_ci([v]), k)}" for k, v in values.items())
            buf.write(f"\nDashed line, quoted (not ours): {label}: {shown}.\n")
        if comparisons.get(dataset):
            buf.write(
                "\nPaired comparisons, crosssent minus variant (p: paired t over seeds, – where undefined: one "
                "shared seed or the same difference on every seed / paired bootstrap over test clips):\n\n"
            )
            _comparison_rows(buf, comparisons[dataset], keys, "vs")
        if extra.get(dataset):
            buf.write("\nFurther paired comparisons, first variant minus second (p as above):\n\n")
            _comparison_rows(buf, extra[dataset], keys, "pair")
        if config.custom_variants:
            buf.write(
                "\nVariants: "
                + "; ".join(f"`{v}` = {' '.join(config.variant_overrides(v)) or 'the base config'}" for v in per_variant)
                + "\n"
            )
        fusion = [f for f in per_variant.get("crosssent", {}).get("fusion", []) if f]
        if fusion and config.report_test:
            buf.write(
                "\nWhat GMRA does on the test split (crosssent, mean over seeds): "
                + ", ".join(f"{k} {np.mean([x[k] for x in fusion]):.3f}" for k in fusion[0])
                + "\n"
            )
    return buf.getvalue()


_SPLIT_HEADING = re.compile(r"^## (\S+) \((?:test|validation) split\)$", re.M)  # a dataset's section of a page


def read_page_tables(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """The per-variant table of every dataset of a report ``render_markdown`` wrote (a published
    page): dataset -> variant -> column -> cell as printed (``"84.52 ± 0.14"``; ``seeds`` as
    ``"3"`` or ``"3 (missing [4])"``). What the page shows is what comes back, never recomputed."""
    tables: dict[str, dict[str, dict[str, str]]] = {}
    dataset: str | None = None
    header: list[str] | None = None
    for line in text.splitlines():
        heading = _SPLIT_HEADING.match(line)
        if heading:
            dataset, header = heading.group(1), None
            tables.setdefault(dataset, {})
        elif line.startswith("#"):
            dataset = None  # another section (transfer, a later heading): not a per-variant table
        elif dataset is not None and line.startswith("| "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
            elif not set(line) <= set("|-"):
                tables[dataset][cells[0]] = dict(zip(header, cells, strict=True))
        elif dataset is not None and header is not None and not line.strip():
            if tables[dataset]:
                dataset = None  # the first table of the section has ended
    return tables


def collect_transfer(config: ExperimentConfig, out: Path) -> dict[str, Any]:
    """The transfer table: per trained dataset and variant (rows), per test dataset (columns:
    the grid's, then the transfer's own), Corr and the binary accuracy over the seeds that
    have a score there (the run's own test metrics on its own dataset)."""
    assert config.transfer is not None
    columns = [*config.datasets, *config.transfer.datasets]
    rows: dict[str, Any] = {}
    for dataset in config.datasets:
        for variant in config.transfer.variants:
            folders = [RunDir(run_dir(out, dataset, variant, s)) for s in config.seeds_of(variant)]
            # per finished run: its own test metrics and its transfer scores, each read once
            runs = [(f.read_metrics()["test"], f.read_transfer()) for f in folders if f.is_finished()]
            if not runs:
                continue
            cells: dict[str, Any] = {}
            for column in columns:
                scored = [own if column == dataset else elsewhere.get(column, {}).get("metrics") for own, elsewhere in runs]
                scored = [m for m in scored if m]
                if not scored:
                    continue
                accuracy = "acc2_non0" if "acc2_non0" in scored[0] else "acc2"
                cells[column] = {
                    "seeds": len(scored),
                    "corr": mean_ci([m["corr"] for m in scored]),
                    accuracy: mean_ci([m[accuracy] for m in scored]),
                }
            rows[f"{dataset} ({variant})"] = cells
    return {"columns": columns, "rows": rows}


def _interval(stat: dict[str, float], scale: float, digits: int) -> str:
    if stat["n"] < 2:  # no interval from one seed; the cell says how many seeds it has
        return f"{stat['mean'] * scale:.{digits}f}"
    return f"{stat['mean'] * scale:.{digits}f} ± {(stat['ci_high'] - stat['mean']) * scale:.{digits}f}"


def render_transfer(transfer: dict[str, Any]) -> str:
    buf = io.StringIO()
    buf.write(
        "\n## Transfer (test splits)\n\nRows: the data a model was trained on; columns: the test split it is "
        "scored on (its own: the grid's numbers above). Streams the model never read or the data lacks are left "
        "empty; predictions are mapped linearly through 0 from the model's label range to the data's (x1 between "
        "[-3, 3] corpora, x3 from [-1, 1] to [-3, 3], x1/3 back), and the data's metric convention applies. "
        "Mean ± 95 % t half-width over seeds; the binary accuracy is Non0-ACC2 on MOSI's scale, ACC2 on "
        "CH-SIMS's.\n\n"
    )
    columns = transfer["columns"]
    buf.write("| trained on | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n")
    for row, cells in transfer["rows"].items():
        shown = []
        for column in columns:
            cell = cells.get(column)
            if cell is None:
                shown.append("not scored yet")
                continue
            accuracy = "acc2_non0" if "acc2_non0" in cell else "acc2"
            name = "Non0-ACC2" if accuracy == "acc2_non0" else "ACC2"
            shown.append(
                f"Corr {_interval(cell['corr'], 1, 3)}, {name} {_interval(cell[accuracy], 100, 2)} "
                + ("(1 seed)" if cell["seeds"] == 1 else f"({cell['seeds']} seeds)")
            )
        buf.write(f"| {row} | " + " | ".join(shown) + " |\n")
    return buf.getvalue()


def write_reports(config: ExperimentConfig, out: Path, *, wall_seconds: float, command: str | None = None) -> dict[str, Any]:
    results = collect(config, out)
    comparisons = compare(config, out, results)
    extra = compare_extra(config, out, results)
    run_seconds = sum(r["wall_seconds"] for d in results.values() for r in d.values())
    partial = sum(r.get("partial_time_runs", 0) for d in results.values() for r in d.values())
    meta = {
        "command": command or f"crosssent experiment --config configs/experiments/{config.name}.yaml --out {out}",
        "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores" + _gpu(),
        "wall_seconds": wall_seconds,
        "run_seconds": run_seconds,
        "partial_time_runs": partial,
    }
    payload = {
        "experiment": config.model_dump(mode="json"),
        "meta": meta,
        "results": results,
        "comparisons": comparisons,
        "extra_comparisons": extra,
    }
    markdown = render_markdown(config, results, comparisons, meta, extra)
    if config.transfer is not None:
        payload["transfer"] = collect_transfer(config, out)
        markdown += render_transfer(payload["transfer"])
    write_json_atomic(out / "results.json", payload)
    split = "test" if config.report_test else "valid"
    write_figures(config.name, out, results, split=split, keys=headline_keys(results, split), quoted=config.quoted)
    write_text_atomic(out / "results.md", markdown)
    write_text_atomic(out / "results.csv", _csv(results, split))
    return payload


def _gpu() -> str:
    import torch

    return f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"


def _csv(results: dict[str, Any], split: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["dataset", "variant", "split", "metric", "n", "mean", "std", "ci_low", "ci_high"])
    for dataset, per_variant in results.items():
        for variant, r in per_variant.items():
            for k, s in r[split].items():
                writer.writerow(
                    [dataset, variant, split, k, s["n"], *(f"{s[key]:.6g}" for key in ("mean", "std", "ci_low", "ci_high"))]
                )
    return buf.getvalue()


def publish(report: str, name: str, document: str | Path, *, figures_from: Path | None = None) -> None:
    """Put a generated report into ``document``. A folder (``docs/results``): the report becomes
    the page ``NAME.md`` there and the folder's ``index.md`` is generated again from every page
    (see ``write_index``); figures go to the ``figures/`` beside the folder. A Markdown file: the
    report goes between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` (appended when the
    markers are absent) and the rest is left as written. With ``figures_from`` (the experiment
    folder), every figure the report links to is copied first, so the links work there too."""
    document = Path(document)
    as_page = document.suffix.lower() != ".md"
    if figures_from is not None:
        for link in re.findall(r"\]\((figures/[^)\s]+\.png)\)", report):
            source = Path(figures_from) / link
            if not source.is_file():
                raise ValueError(f"{source}: figure linked from the report is missing")
            write_bytes_atomic(document.parent / link, source.read_bytes())
    if as_page:
        page = re.sub(r"\]\(figures/", "](../figures/", report.strip())
        write_text_atomic(document / f"{name}.md", f"<!-- generated by crosssent experiment --publish; do not edit -->\n{page}\n")
        write_index(document)
        return
    text = document.read_text(encoding="utf-8") if document.exists() else ""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{report.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_text_atomic(document, text)


def write_index(folder: Path) -> Path:
    """Write ``index.md`` of a folder of published pages (``render_index``)."""
    index = Path(folder) / "index.md"
    write_text_atomic(index, render_index(folder))
    return index


def script_page_head(kind: str, name: str, script: str) -> list[str]:
    """The first lines of a page a script publishes (``kind``: Probe, Diagnostic, Robustness; the
    index reads it): its title and the command that made it, this process's own arguments."""
    command = f"python scripts/{script} " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return [f"# {kind} `{name}`", "", f"Command: `{command}`", ""]


def render_index(folder: Path) -> str:
    """The index of a folder of published pages: one row per page, with what each page's own
    header says (kind, datasets, command), so no line of it is written by hand."""
    rows = []
    for page in sorted(p for p in Path(folder).glob("*.md") if p.name != "index.md"):
        text = page.read_text(encoding="utf-8")
        command = re.search(r"^Command: `([^`]+)`", text, re.M)
        datasets = [m.group(1) for m in _SPLIT_HEADING.finditer(text)]
        kind = "validation search" if "VALIDATION metrics only" in text else "test results"
        kind = "robustness" if re.search(r"^# Robustness `", text, re.M) else kind
        kind = "probe" if re.search(r"^# Probe `", text, re.M) else kind
        kind = "diagnostic" if re.search(r"^# Diagnostic `", text, re.M) else kind
        rows.append(
            f"| [{page.stem}]({page.name}) | {kind} | {', '.join(dict.fromkeys(datasets)) or '-'} | "
            f"`{command.group(1) if command else '-'}` |"
        )
    lines = [
        "<!-- generated by crosssent experiment --publish; do not edit -->",
        "# Published experiments",
        "",
        "Every page here is an experiment's own report, written by `crosssent experiment --publish docs/results`",
        "(robustness pages: `crosssent robustness --publish docs/results` or `scripts/hide_streams.py --publish docs/results`;",
        "probes and diagnostics: their script's `--publish docs/results`);",
        "the readings are in [../results.md](../results.md).",
        "",
        "| page | kind | datasets | command |",
        "|---|---|---|---|",
        *rows,
    ]
    return "\n".join(lines) + "\n"
