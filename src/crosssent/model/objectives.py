"""Training objectives: MSE + Monotonic Pairwise Ranking (MPR) + Error-Interval Ordinal
Inconsistency (EIOI), with the cosine ramp of their weights (docs/method.md).

Plain functions plus one ``nn.Module`` that combines them; imports nothing else of ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn


def _check_pair(pred: Tensor, label: Tensor) -> None:
    if pred.shape != label.shape or pred.dim() != 1:
        raise ValueError(
            f"predictions have shape {tuple(pred.shape)} and labels {tuple(label.shape)}; "
            "expected two flat tensors of the same length"
        )


def mpr_loss(pred: Tensor, label: Tensor, *, delta: float = 0.0, alpha: float = 0.1, beta: float = 1.0) -> Tensor:
    """Mean hinge over the ordered pairs whose labels differ by more than ``delta``.

    For i < j with |y_i - y_j| > delta: max(0, alpha*|y_i - y_j|**beta - sign(y_i - y_j)(p_i - p_j)).
    Returns 0 (with a gradient path) when no pair qualifies. Vectorised over the B x B matrix.
    """
    _check_pair(pred, label)
    gap = label[:, None] - label[None, :]  # (B, B): y_i - y_j
    pred_gap = pred[:, None] - pred[None, :]  # (B, B): p_i - p_j
    upper = torch.ones_like(gap, dtype=torch.bool).triu(diagonal=1)  # i < j
    pairs = upper & (gap.abs() > delta)
    margin = alpha * gap.abs().pow(beta)
    hinge = torch.relu(margin - torch.sign(gap) * pred_gap)
    count = pairs.sum()
    if count == 0:
        return pred.sum() * 0.0
    return (hinge * pairs).sum() / count


def eioi_loss(pred: Tensor, label: Tensor, *, epsilon: float, form: Literal["squared", "linear"] = "squared") -> Tensor:
    """Penalty for predictions outside the tolerance band [y - epsilon, y + epsilon]:
    e_i = max(0, |p_i - y_i| - epsilon); mean(e_i**2) (default) or mean(e_i)."""
    _check_pair(pred, label)
    excess = torch.relu((pred - label).abs() - epsilon)
    return (excess.pow(2) if form == "squared" else excess).mean()


def cosine_ramp(progress: float, *, ramp: float, max_weight: float) -> float:
    """lambda(t) = max_weight * 0.5 * (1 - cos(pi * min(1, t / ramp))); ``ramp <= 0`` = no ramp."""
    if ramp <= 0:
        return max_weight
    fraction = min(1.0, max(0.0, progress) / ramp)
    return max_weight * 0.5 * (1.0 - math.cos(math.pi * fraction))


@dataclass
class LossBreakdown:
    total: Tensor
    mse: Tensor
    mpr: Tensor
    eioi: Tensor
    lambda_mpr: float
    lambda_eioi: float


class CrossSentObjective(nn.Module):
    """L = MSE + lambda_r(t) * L_MPR + lambda_e(t) * L_EIOI.

    ``progress`` is measured in epochs (fractional); the lambdas reach their maximum after
    ``ramp_epochs``. ``epsilon`` is absolute here; configs give it relative to the label range
    (see ``crosssent.train.config``), so that one setting suits [-3, 3] and [-1, 1] alike.
    """

    def __init__(
        self,
        *,
        lambda_mpr: float = 0.1,
        lambda_eioi: float = 0.1,
        ramp_epochs: float = 2.0,
        delta: float = 0.0,
        alpha: float = 0.1,
        beta: float = 1.0,
        epsilon: float = 0.5,
        eioi_form: Literal["squared", "linear"] = "squared",
    ) -> None:
        super().__init__()
        if min(lambda_mpr, lambda_eioi, delta, alpha, epsilon) < 0:
            raise ValueError("lambda_mpr, lambda_eioi, delta, alpha and epsilon must be >= 0")
        self.lambda_mpr, self.lambda_eioi, self.ramp_epochs = lambda_mpr, lambda_eioi, ramp_epochs
        self.delta, self.alpha, self.beta = delta, alpha, beta
        self.epsilon, self.eioi_form = epsilon, eioi_form

    def forward(self, pred: Tensor, label: Tensor, *, progress: float) -> LossBreakdown:
        _check_pair(pred, label)
        mse = nn.functional.mse_loss(pred, label)
        lam_r = cosine_ramp(progress, ramp=self.ramp_epochs, max_weight=self.lambda_mpr)
        lam_e = cosine_ramp(progress, ramp=self.ramp_epochs, max_weight=self.lambda_eioi)
        zero = pred.sum() * 0.0
        mpr = mpr_loss(pred, label, delta=self.delta, alpha=self.alpha, beta=self.beta) if self.lambda_mpr else zero
        eioi = eioi_loss(pred, label, epsilon=self.epsilon, form=self.eioi_form) if self.lambda_eioi else zero
        total = mse + lam_r * mpr + lam_e * eioi
        return LossBreakdown(total=total, mse=mse, mpr=mpr, eioi=eioi, lambda_mpr=lam_r, lambda_eioi=lam_e)
