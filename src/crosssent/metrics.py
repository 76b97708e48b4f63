"""Benchmark metrics with the community's conventions (MMSA), pinned by tests.

- numpy's ``round`` (half to even), after clipping;
- MOSI/MOSEI: Has0 = (x >= 0) over all clips; Non0 = drop clips whose *label* is 0, then
  (x > 0); F1 is weighted F1; MAE on unclipped values;
- CH-SIMS: predictions and labels clipped to [-1, 1] first (MAE and Corr too); ACC2 = (x > 0);
  ACC3/ACC5 by the bin edges of MMSA (left-open, right-closed bins);
- ordinal extras: quadratic-weighted kappa, share of clips off by >= 2 levels, mean level gap.

Pure numpy: weighted F1 and quadratic kappa are written out (a paired bootstrap calls this
thousands of times, and scikit-learn's input checks made that minutes per report); a test checks
both against scikit-learn's ``f1_score`` / ``cohen_kappa_score``. Imports nothing else of ours.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

Dataset = Literal["mosi", "mosei", "sims"]

MOSI_KEYS = (
    "acc2_has0",
    "f1_has0",
    "acc2_non0",
    "f1_non0",
    "acc7",
    "acc5",
    "acc3",
    "mae",
    "corr",
    "qwk",
    "jump2",
    "mean_abs_jump",
)
SIMS_KEYS = ("acc2", "f1", "acc3", "acc5", "mae", "corr", "qwk", "jump2", "mean_abs_jump", "qwk3")
KEYS: dict[str, tuple[str, ...]] = {"mosi": MOSI_KEYS, "mosei": MOSI_KEYS, "sims": SIMS_KEYS}
# Which direction is better, for reports and model comparison.
LOWER_IS_BETTER = frozenset({"mae", "jump2", "mean_abs_jump"})
# Reports show these as they are; every other key is a share of clips, shown in %.
RAW_VALUE_KEYS = frozenset({"mae", "corr", "qwk", "qwk3", "mean_abs_jump"})


def _as_flat(name: str, values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().cpu().float().numpy()
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(array)).sum())} NaN/inf value(s)")
    return array


def _corr(pred: np.ndarray, label: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (undefined, not 0)."""
    if pred.std() == 0 or label.std() == 0:
        return float("nan")
    return float(np.corrcoef(pred, label)[0, 1])


def _ordinal(pred_levels: np.ndarray, label_levels: np.ndarray, levels: range) -> dict[str, float]:
    gap = np.abs(pred_levels - label_levels)
    if np.array_equal(pred_levels, label_levels):
        qwk = 1.0  # perfect agreement (the formula gives 0/0 when only one level occurs)
    else:
        qwk = quadratic_kappa(label_levels, pred_levels, levels)
    return {"qwk": qwk, "jump2": float(np.mean(gap >= 2)), "mean_abs_jump": float(np.mean(gap))}


def quadratic_kappa(label_levels: np.ndarray, pred_levels: np.ndarray, levels: range) -> float:
    """Cohen's kappa with quadratic weights over the integer ``levels`` (as scikit-learn's
    ``cohen_kappa_score(..., weights="quadratic")``); NaN when chance disagreement is 0."""
    k = len(levels)
    rows = (np.asarray(label_levels) - levels.start).astype(np.int64)
    cols = (np.asarray(pred_levels) - levels.start).astype(np.int64)
    observed = np.bincount(rows * k + cols, minlength=k * k).reshape(k, k).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    weight = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2.0
    chance = float((weight * expected).sum())
    return 1.0 - float((weight * observed).sum()) / chance if chance else float("nan")


def weighted_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """F1 of each class present in ``truth`` or ``pred`` (bool arrays), averaged with the
    class's share of ``truth`` as weight (scikit-learn's ``average="weighted"``; 0 for a class
    never predicted correctly)."""
    total = 0.0
    for cls in (False, True):
        in_truth, in_pred = truth == cls, pred == cls
        support = int(in_truth.sum())
        if support == 0:
            continue  # weight 0
        tp = int((in_truth & in_pred).sum())
        total += support * (2 * tp / (support + int(in_pred.sum())))
    return total / truth.size


def _binary(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    acc = float(np.mean(truth == pred))
    return acc, weighted_f1(truth, pred)


def _mosi(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    out["acc2_has0"], out["f1_has0"] = _binary(label >= 0, pred >= 0)
    non0 = label != 0
    if non0.any():
        out["acc2_non0"], out["f1_non0"] = _binary(label[non0] > 0, pred[non0] > 0)
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    for key, bound in (("acc7", 3), ("acc5", 2), ("acc3", 1)):
        out[key] = float(np.mean(np.round(np.clip(pred, -bound, bound)) == np.round(np.clip(label, -bound, bound))))
    out["mae"] = float(np.mean(np.abs(pred - label)))
    out["corr"] = _corr(pred, label)
    out.update(_ordinal(np.round(np.clip(pred, -3, 3)), np.round(np.clip(label, -3, 3)), range(-3, 4)))
    return out


def _bins(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Class index of each value for bins (edges[i], edges[i+1]] (MMSA's convention)."""
    classes = np.zeros(values.shape, dtype=np.int64)
    for i in range(len(edges) - 1):
        classes[(values > edges[i]) & (values <= edges[i + 1])] = i
    return classes


def _sims(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    pred, label = np.clip(pred, -1, 1), np.clip(label, -1, 1)
    out: dict[str, float] = {}
    out["acc2"], out["f1"] = _binary(label > 0, pred > 0)
    out["acc3"] = float(np.mean(_bins(pred, [-1.01, -0.1, 0.1, 1.01]) == _bins(label, [-1.01, -0.1, 0.1, 1.01])))
    edges5 = [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]
    out["acc5"] = float(np.mean(_bins(pred, edges5) == _bins(label, edges5)))
    out["mae"] = float(np.mean(np.abs(pred - label)))
    out["corr"] = _corr(pred, label)
    out.update(_ordinal(np.round(2 * pred), np.round(2 * label), range(-2, 3)))
    out["qwk3"] = _ordinal(np.round(pred), np.round(label), range(-1, 2))["qwk"]
    return {key: out[key] for key in SIMS_KEYS}


def compute_metrics(preds: Any, labels: Any, dataset: str) -> dict[str, float]:
    """All benchmark metrics for one split. ``dataset`` is ``mosi``, ``mosei`` or ``sims``;
    ``preds``/``labels`` are lists, numpy arrays or tensors of the same length."""
    if dataset not in KEYS:
        raise ValueError(f"dataset must be one of {sorted(KEYS)}, got {dataset!r}")
    pred = _as_flat("predictions", preds)
    label = _as_flat("labels", labels)
    if pred.shape != label.shape:
        raise ValueError(f"predictions and labels differ in length: {pred.size} predictions, {label.size} labels")
    return _sims(pred, label) if dataset == "sims" else _mosi(pred, label)
