"""Experiment grids: datasets x variants x seeds, resumable, with statistics and a report.

An experiment config (``configs/experiments/*.yaml``) names a base run config, the datasets
(each a set of ``--set`` overrides, usually ``data.path``), the variants, the seeds and extra
overrides. Each run lives in ``OUT/runs/DATASET/VARIANT/seedN`` and is an ordinary run
directory: a finished one (``metrics.json``) is skipped, an interrupted one is resumed from its
last checkpoint, and one made with other settings is refused. A run folder is claimed with a
lock file, so several processes can share a grid. The grid is ordered seed by seed, so a
partial grid covers every variant. ``custom_variants`` and ``report_test: false`` turn a grid
into a hyper-parameter search whose reports hold validation numbers only. With ``records`` set,
each finished run is also written as a committed run record (``crosssent.records``) and a run
folder missing here is restored from its record instead of retrained.

Reports (``OUT/results.{md,csv,json}``): per dataset and variant, mean ± std and a 95% t
confidence interval of every test metric over seeds (validation MSE too), and paired
comparisons of ``crosssent`` against every other variant (and any ``extra_pairs``): a paired
t-test over seeds and a paired bootstrap over test clips (resampling clips, averaging the metric
difference over seeds).
Model selection inside each run is on validation only; the test split is scored once per run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy import stats

from crosssent.data.dataset import write_json_atomic, write_text_atomic
from crosssent.evaluation import read_predictions
from crosssent.metrics import compute_metrics
from crosssent.provenance import code_summary
from crosssent.records import record_path, restore_run, run_task, write_record
from crosssent.settings import RunSettings, first_difference, load_settings

VARIANT_OVERRIDES: dict[str, list[str]] = {
    "crosssent": [],
    "no_gmra": ["model.variant=text_only"],
    "no_mpr": ["objective.lambda_mpr=0"],
    "no_eioi": ["objective.lambda_eioi=0"],
    "mag": ["model.variant=mag"],
    "late_fusion": ["model.variant=late_fusion"],
}
HEADLINE = {
    "mosi": ("acc2_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr"),
    "mosei": ("acc2_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr"),
    "sims": ("acc2", "f1", "acc3", "acc5", "mae", "corr"),
}


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    base: Path  # run config used as the template
    datasets: dict[str, list[str]]  # dataset label -> --set overrides (e.g. data.path=...)
    variants: list[str] = Field(default_factory=lambda: ["crosssent", "no_gmra"])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    overrides: list[str] = []  # applied to every run
    seed_overrides: dict[str, list[int]] = {}  # variant -> its own (shorter) seed list
    bootstrap: int = Field(default=1000, ge=0)
    # Extra named variants (name -> --set overrides), e.g. the points of a hyper-parameter search.
    custom_variants: dict[str, list[str]] = {}
    # False for a search: the report shows validation metrics only (selection must not see test).
    report_test: bool = True
    # Folder of committed run records (crosssent.records): a finished run is recorded there, and
    # a run folder missing in this checkout is restored from its record instead of retrained.
    records: Path | None = None
    # Paired comparisons beyond "crosssent minus every variant": [A, B] reports A minus B.
    extra_pairs: list[tuple[str, str]] = []

    def variant_overrides(self, variant: str) -> list[str]:
        return self.custom_variants.get(variant, VARIANT_OVERRIDES.get(variant, []))


def load_experiment(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
        config = ExperimentConfig.model_validate(tree)
    except FileNotFoundError:
        raise ValueError(f"{path}: experiment config not found") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except ValidationError as err:
        first = err.errors()[0]
        raise ValueError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    known = {**VARIANT_OVERRIDES, **config.custom_variants}
    unknown = [v for v in config.variants if v not in known]
    if unknown:
        raise ValueError(f"{path}: unknown variant {unknown[0]!r}; choose from {list(known)} or define it under custom_variants")
    for pair in config.extra_pairs:
        if any(v not in config.variants for v in pair) or pair[0] == pair[1]:
            raise ValueError(f"{path}: extra_pairs: {list(pair)} must name two different variants of this experiment")
    return config


def grid(config: ExperimentConfig) -> list[tuple[str, str, int]]:
    """(dataset, variant, seed), seed-major so that a partial grid covers every variant."""
    cells = []
    for seed in sorted({s for v in config.variants for s in config.seed_overrides.get(v, config.seeds)}):
        for dataset in config.datasets:
            for variant in config.variants:
                if seed in config.seed_overrides.get(variant, config.seeds):
                    cells.append((dataset, variant, seed))
    return cells


def cell_settings(config: ExperimentConfig, dataset: str, variant: str, seed: int) -> RunSettings:
    """The run settings of one grid cell: base config, then the experiment's, the dataset's,
    the variant's and the seed's overrides, in that order."""
    overrides = [*config.overrides, *config.datasets[dataset], *config.variant_overrides(variant), f"train.seed={seed}"]
    return load_settings(config.base, overrides)


def run_dir(out: Path, dataset: str, variant: str, seed: int) -> Path:
    return out / "runs" / dataset / variant / f"seed{seed}"


class GridIncomplete(RuntimeError):
    """Raised when ``max_runs`` new runs were made and cells remain (continue later)."""


def run_grid(
    config: ExperimentConfig, out: str | Path, *, max_runs: int | None = None,
    echo: Callable[[str], None] = print, run_fn: Callable[..., Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run every missing cell (resuming interrupted ones), then write the reports."""
    from crosssent.training import train_run

    run_fn = run_fn or train_run
    out = Path(out)
    cells = grid(config)
    started, made = time.time(), 0
    for i, (dataset, variant, seed) in enumerate(cells, start=1):
        target = run_dir(out, dataset, variant, seed)
        label = f"[{i}/{len(cells)}] {dataset} {variant} seed {seed}"
        settings = cell_settings(config, dataset, variant, seed)
        _check_same_settings(target, settings)
        if _sync_record(config, target, (dataset, variant, seed), settings):
            echo(f"{label}: restored from {record_path(config.records, dataset, variant, seed)}")
            continue
        if (target / "metrics.json").exists():
            echo(f"{label}: done, skipped")
            continue
        if max_runs is not None and made >= max_runs:
            write_reports(config, out, wall_seconds=time.time() - started, command=command)
            raise GridIncomplete(f"stopped after {made} new run(s); {len(cells) - i + 1} cell(s) left")
        lock = _claim(target)
        if lock is None:
            echo(f"{label}: being trained by another process, skipped")
            continue
        try:
            if (target / "metrics.json").exists():  # finished by another process meanwhile
                echo(f"{label}: done, skipped")
                continue
            resume = (target / "checkpoints" / "last.ckpt").exists()
            echo(f"{label}: {'resuming' if resume else 'training'} ...")
            t0 = time.time()
            run_fn(settings, target, resume=resume)
        finally:
            lock.unlink(missing_ok=True)
        made += 1
        _sync_record(config, target, (dataset, variant, seed), settings)
        echo(f"{label}: finished in {time.time() - t0:.0f}s")
    return write_reports(config, out, wall_seconds=time.time() - started, command=command)


def sync_records(config: ExperimentConfig, out: str | Path) -> int:
    """Record every finished run that has no record yet, and restore every run folder that is
    missing but recorded (no training). Returns how many runs were restored."""
    restored = 0
    for dataset, variant, seed in grid(config):
        target = run_dir(Path(out), dataset, variant, seed)
        settings = cell_settings(config, dataset, variant, seed)
        _check_same_settings(target, settings)
        restored += _sync_record(config, target, (dataset, variant, seed), settings)
    return restored


def _sync_record(config: ExperimentConfig, target: Path, cell: tuple[str, str, int], settings: Any) -> bool:
    """Write the record of a finished run that lacks one; restore an unfinished run that has
    one. True when the run was restored."""
    if config.records is None:
        return False
    record = record_path(config.records, *cell)
    if (target / "metrics.json").exists():
        if not record.exists():
            write_record(target, record, with_test=config.report_test)
        return False
    if record.exists():
        restore_run(record, target, settings, need_test=config.report_test)
        return True
    return False


def _claim(target: Path) -> Path | None:
    """Take ``target/.lock`` (holding our pid) so that several ``crosssent experiment``
    processes can work on one grid; None when a live process holds it. A lock left by a
    dead process is taken over (its run resumes from the last checkpoint)."""
    target.mkdir(parents=True, exist_ok=True)
    lock = target / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or "0")
                os.kill(pid, 0)
                return None  # alive
            except ProcessLookupError:
                lock.unlink(missing_ok=True)  # stale: its owner died
                continue
            except (ValueError, PermissionError):
                return None
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        return lock
    return None


def _check_same_settings(target: Path, settings: Any) -> None:
    """A run folder made with other settings (the config changed since) is never reused."""
    saved_file = target / "config.yaml"
    if not saved_file.exists():
        return
    difference = first_difference(yaml.safe_load(saved_file.read_text(encoding="utf-8")), settings)
    if difference:
        raise ValueError(f"{target}: {difference}; delete that run folder or use another --out")


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
    rows = read_predictions(target / "predictions.csv", "test")
    return [r[0] for r in rows], np.array([r[1] for r in rows]), np.array([r[2] for r in rows])


def paired_bootstrap(
    labels: np.ndarray, preds_a: list[np.ndarray], preds_b: list[np.ndarray], task: str,
    keys: tuple[str, ...], *, samples: int, seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Resample test clips (the same clips for every seed and both systems); the statistic is
    the metric difference A - B averaged over seeds. Two-sided p-value of "no difference"."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    observed = {k: float(np.mean([compute_metrics(a, labels, task)[k] - compute_metrics(b, labels, task)[k]
                                  for a, b in zip(preds_a, preds_b)])) for k in keys}
    draws = {k: [] for k in keys}
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        y = labels[idx]
        diffs = [(compute_metrics(a[idx], y, task), compute_metrics(b[idx], y, task)) for a, b in zip(preds_a, preds_b)]
        for k in keys:
            draws[k].append(np.mean([ma[k] - mb[k] for ma, mb in diffs]))
    result = {}
    for k in keys:
        d = np.asarray(draws[k])
        d = d[np.isfinite(d)]
        # (count + 1) / (samples + 1): a bootstrap never proves p = 0
        tail = min((d <= 0).sum(), (d >= 0).sum())
        p = float(min(1.0, 2 * (tail + 1) / (len(d) + 1))) if len(d) else float("nan")
        result[k] = {"diff": observed[k], "ci_low": float(np.percentile(d, 2.5)) if len(d) else float("nan"),
                     "ci_high": float(np.percentile(d, 97.5)) if len(d) else float("nan"), "p": p}
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
            seeds = config.seed_overrides.get(variant, config.seeds)
            finished = [s for s in seeds if (run_dir(out, dataset, variant, s) / "metrics.json").exists()]
            if not finished:
                continue
            runs = {s: json.loads((run_dir(out, dataset, variant, s) / "metrics.json").read_text()) for s in finished}
            info = {s: json.loads((run_dir(out, dataset, variant, s) / "run_info.json").read_text()) for s in finished}
            entry: dict[str, Any] = {
                "seeds": finished,
                "missing_seeds": [s for s in seeds if s not in finished],
                "valid": {k: mean_ci([runs[s]["valid"][k] for s in finished]) for k in runs[finished[0]]["valid"]},
                "valid_mse": mean_ci([info[s]["best_valid_mse"] for s in finished]),
                "wall_seconds": float(sum(info[s]["wall_seconds"] for s in finished)),
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


def _paired(config: ExperimentConfig, out: Path, dataset: str, per_variant: dict[str, Any],
            a: str, b: str, task: str) -> dict[str, Any] | None:
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


def _compare_pairs(config: ExperimentConfig, out: Path, results: dict[str, Any],
                   pairs: Callable[[dict[str, Any]], list[tuple[str, str, str]]]) -> dict[str, Any]:
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
    return _compare_pairs(config, out, results, lambda per_variant: [
        ("crosssent", v, v) for v in per_variant if v != "crosssent"] if "crosssent" in per_variant else [])


def compare_extra(config: ExperimentConfig, out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """The ``extra_pairs``: {dataset: {"A - B": entry}}."""
    return _compare_pairs(config, out, results, lambda per_variant: [
        (a, b, f"{a} - {b}") for a, b in config.extra_pairs if a in per_variant and b in per_variant])


def _fmt(stat: dict[str, float], key: str) -> str:
    scale = 1.0 if key in ("mae", "corr", "qwk", "mean_abs_jump") else 100.0
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
            shown = f"{diff:+.3f}" if k in ("mae", "corr") else f"{diff * 100:+.2f}"
            pb = f"{boot['p']:.3f}" if boot else "–"
            cells.append(f"{shown} (p {c['paired_t_p'][k]:.3f} / {pb})")
        buf.write(f"| {name} | " + " | ".join(cells) + " |\n")


def render_markdown(
    config: ExperimentConfig, results: dict[str, Any], comparisons: dict[str, Any], meta: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> str:
    extra = extra or {}
    buf = io.StringIO()
    buf.write(f"# Experiment `{config.name}`\n\n")
    buf.write(f"Command: `{meta['command']}`  \nHardware: {meta['hardware']}; grid wall time this invocation: "
              f"{meta['wall_seconds']:.0f} s; summed run time: {meta['run_seconds']:.0f} s.  \n")
    buf.write(f"Code the runs were made with: {_code_line(results) or 'no runs yet'}.\n\n")
    split = "test" if config.report_test else "valid"
    if config.report_test:
        buf.write("Values: mean ± sample std over seeds (accuracies and F1 in %); 95% t intervals are in "
                  "results.json / results.csv. Model selection on validation MSE only.\n")
    else:
        buf.write("Search report: VALIDATION metrics only (mean ± sample std over seeds; the test split "
                  "is not shown, so it cannot steer the choice).\n")
    for dataset, per_variant in results.items():
        if not per_variant:
            continue
        first = next(iter(per_variant.values()))
        task = "sims" if "acc2" in first[split] else "mosi"
        keys = HEADLINE[task]
        buf.write(f"\n## {dataset} ({'test' if config.report_test else 'validation'} split)\n\n")
        buf.write("| variant | seeds | " + " | ".join(keys) + " | valid MSE |\n")
        buf.write("|---|---|" + "---|" * len(keys) + "---|\n")
        for variant, r in per_variant.items():
            missing = f" (missing {r['missing_seeds']})" if r["missing_seeds"] else ""
            cells = " | ".join(_fmt(r[split][k], k) for k in keys)
            buf.write(f"| {variant} | {len(r['seeds'])}{missing} | {cells} | {_fmt(r['valid_mse'], 'mae')} |\n")
        if comparisons.get(dataset):
            buf.write(f"\nPaired comparisons, crosssent minus variant (p: paired t over seeds / paired bootstrap over test clips):\n\n")
            _comparison_rows(buf, comparisons[dataset], keys, "vs")
        if extra.get(dataset):
            buf.write("\nFurther paired comparisons, first variant minus second (p as above):\n\n")
            _comparison_rows(buf, extra[dataset], keys, "pair")
        if config.custom_variants:
            buf.write("\nVariants: " + "; ".join(
                f"`{v}` = {' '.join(config.variant_overrides(v)) or 'the base config'}" for v in per_variant) + "\n")
        fusion = [f for f in per_variant.get("crosssent", {}).get("fusion", []) if f]
        if fusion and config.report_test:
            buf.write("\nWhat GMRA does on the test split (crosssent, mean over seeds): " + ", ".join(
                f"{k} {np.mean([x[k] for x in fusion]):.3f}" for k in fusion[0]) + "\n")
    return buf.getvalue()


def write_reports(config: ExperimentConfig, out: Path, *, wall_seconds: float, command: str | None = None) -> dict[str, Any]:
    results = collect(config, out)
    comparisons = compare(config, out, results)
    extra = compare_extra(config, out, results)
    run_seconds = sum(r["wall_seconds"] for d in results.values() for r in d.values())
    meta = {
        "command": command or f"crosssent experiment --config configs/experiments/{config.name}.yaml --out {out}",
        "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores" + _gpu(),
        "wall_seconds": wall_seconds, "run_seconds": run_seconds,
    }
    payload = {"experiment": config.model_dump(mode="json"), "meta": meta, "results": results,
               "comparisons": comparisons, "extra_comparisons": extra}
    write_json_atomic(out / "results.json", payload)
    write_text_atomic(out / "results.md", render_markdown(config, results, comparisons, meta, extra))
    write_text_atomic(out / "results.csv", _csv(results, "test" if config.report_test else "valid"))
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
                writer.writerow([dataset, variant, split, k, s["n"], f"{s['mean']:.6g}", f"{s['std']:.6g}", f"{s['ci_low']:.6g}", f"{s['ci_high']:.6g}"])
    return buf.getvalue()


def publish(report: str, name: str, document: str | Path) -> None:
    """Put a generated report into ``document`` between ``<!-- begin NAME -->`` and
    ``<!-- end NAME -->`` (appended when the markers are absent); the rest is left as written."""
    document = Path(document)
    text = document.read_text(encoding="utf-8") if document.exists() else ""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{report.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_text_atomic(document, text)
