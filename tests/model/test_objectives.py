import math

import pytest
import torch

from crosssent.model.objectives import CrossSentObjective, cosine_ramp, eioi_loss, mpr_loss


def test_mpr_matches_hand_computed_pairs():
    y = torch.tensor([2.0, 0.0, -1.0])
    p = torch.tensor([0.5, 0.7, -1.0])
    # alpha=0.5, beta=1, delta=0.5: pairs (0,1) gap 2, (0,2) gap 3, (1,2) gap 1
    # (0,1): max(0, 1.0 - (0.5-0.7)) = 1.2; (0,2): max(0, 1.5 - 1.5) = 0; (1,2): max(0, 0.5 - 1.7) = 0
    loss = mpr_loss(p, y, delta=0.5, alpha=0.5, beta=1.0)
    assert loss.item() == pytest.approx(1.2 / 3)
    # delta=1.5 keeps only gaps 2 and 3
    assert mpr_loss(p, y, delta=1.5, alpha=0.5, beta=1.0).item() == pytest.approx(1.2 / 2)
    # beta=2: margins 0.5*4=2, 0.5*9=4.5, 0.5*1=0.5 -> 2.2, 3.0, 0
    assert mpr_loss(p, y, delta=0.0, alpha=0.5, beta=2.0).item() == pytest.approx(5.2 / 3)


def test_mpr_empty_pair_set_is_zero_with_gradient():
    p = torch.tensor([0.3, -0.2], requires_grad=True)
    loss = mpr_loss(p, torch.tensor([1.0, 1.0]), delta=0.1)
    assert loss.item() == 0.0
    loss.backward()
    assert p.grad is not None and torch.all(p.grad == 0)
    assert mpr_loss(torch.tensor([0.5]), torch.tensor([1.0])).item() == 0.0  # batch of one


def test_eioi_squared_and_linear():
    y = torch.tensor([0.0, 1.0, -2.0])
    p = torch.tensor([0.3, 2.0, 0.0])
    # |err| = 0.3, 1.0, 2.0; eps=0.5 -> excess 0, 0.5, 1.5
    assert eioi_loss(p, y, epsilon=0.5).item() == pytest.approx((0.25 + 2.25) / 3)
    assert eioi_loss(p, y, epsilon=0.5, form="linear").item() == pytest.approx(2.0 / 3)


def test_cosine_ramp():
    assert cosine_ramp(0.0, ramp=2.0, max_weight=0.4) == 0.0
    assert cosine_ramp(1.0, ramp=2.0, max_weight=0.4) == pytest.approx(0.2)
    assert cosine_ramp(5.0, ramp=2.0, max_weight=0.4) == pytest.approx(0.4)
    assert cosine_ramp(0.5, ramp=2.0, max_weight=1.0) == pytest.approx(0.5 * (1 - math.cos(math.pi / 4)))
    assert cosine_ramp(0.0, ramp=0.0, max_weight=0.3) == 0.3


def test_total_loss_combines_terms_with_ramped_weights():
    y = torch.tensor([1.0, -1.0, 0.0, 2.0])
    p = torch.tensor([0.0, 0.5, 0.2, 2.5])
    obj = CrossSentObjective(lambda_mpr=0.2, lambda_eioi=0.4, ramp_epochs=2.0, alpha=0.1, epsilon=0.3)
    out = obj(p, y, progress=1.0)
    mse = torch.mean((p - y) ** 2)
    expected = mse + 0.1 * mpr_loss(p, y, alpha=0.1) + 0.2 * eioi_loss(p, y, epsilon=0.3)
    assert out.total.item() == pytest.approx(expected.item())
    assert out.lambda_mpr == pytest.approx(0.1) and out.lambda_eioi == pytest.approx(0.2)
    assert obj(p, y, progress=0.0).total.item() == pytest.approx(mse.item())


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"predictions have shape \(3,\) and labels \(2,\)"):
        mpr_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="must be >= 0"):
        CrossSentObjective(lambda_mpr=-1.0)
