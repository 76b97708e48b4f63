import numpy as np
import pytest
import torch

from crosssent.metrics import MOSI_KEYS, SIMS_KEYS, compute_metrics


def test_mosi_keys_and_hand_computed_values():
    labels = np.array([-2.6, -0.4, 0.0, 0.5, 1.5, 2.5])
    preds = np.array([-3.4, 0.2, -0.2, 0.5, 2.5, 1.4])
    m = compute_metrics(preds, labels, "mosi")
    assert tuple(m) == MOSI_KEYS
    # Has0: truth >= 0 -> [F,F,T,T,T,T]; pred >= 0 -> [F,T,F,T,T,T]: 4/6 right
    assert m["acc2_has0"] == pytest.approx(4 / 6)
    # Non0 drops the clip labelled 0: truth>0 [F,F,T,T,T], pred>0 [F,T,T,T,T]: 4/5
    assert m["acc2_non0"] == pytest.approx(4 / 5)
    # acc7: clip to [-3,3] then round-half-even: preds [-3,0,-0,0,2,1] labels [-3,-0,0,0,2,2]
    assert m["acc7"] == pytest.approx(5 / 6)
    # acc3: clip to [-1,1]: preds [-1,0.2,-0.2,0.5,1,1]->[-1,0,-0,0,1,1]; labels [-1,-0,0,0,1,1]
    assert m["acc3"] == pytest.approx(1.0)
    # MAE is on unclipped values (the -3.4 counts 0.8)
    assert m["mae"] == pytest.approx(np.mean(np.abs(preds - labels)))
    assert m["corr"] == pytest.approx(np.corrcoef(preds, labels)[0, 1])
    # levels: preds [-3,0,0,0,2,1] labels [-3,0,0,0,2,2] -> gaps [0,0,0,0,0,1]
    assert m["jump2"] == 0.0 and m["mean_abs_jump"] == pytest.approx(1 / 6)


def test_weighted_f1_matches_hand_computation():
    labels = np.array([1.0, 1.0, 1.0, -1.0])
    preds = np.array([1.0, 1.0, -1.0, -1.0])
    m = compute_metrics(preds, labels, "mosei")
    # class pos: P=1, R=2/3, F1=0.8 (support 3); class neg: P=0.5, R=1, F1=2/3 (support 1)
    assert m["f1_has0"] == pytest.approx((3 * 0.8 + 1 * 2 / 3) / 4)


def test_half_to_even_rounding_and_clipping_before_rounding():
    # 0.5 rounds to 0 and 1.5 to 2 (numpy), not 1 and 2 (round-half-up)
    m = compute_metrics([0.5, 1.5, 2.5], [0.0, 2.0, 2.0], "mosi")
    assert m["acc7"] == pytest.approx(1.0)
    # acc5 clips to [-2,2] first: 2.9 -> 2 matches label 2.6 -> 2; unclipped would be 3 vs 3
    m = compute_metrics([2.9, -2.9], [2.0, -2.4], "mosi")
    assert m["acc5"] == 1.0 and m["acc7"] == 0.0


def test_neutral_labels_count_in_has0_but_not_non0():
    m = compute_metrics([0.3, -0.3], [0.0, 0.0], "mosi")
    assert m["acc2_has0"] == 0.5  # 0 counts as non-negative
    assert np.isnan(m["acc2_non0"])  # nothing left once neutral labels are dropped
    m = compute_metrics([0.3, -0.3, 1.0], [0.0, 0.0, 2.0], "mosi")
    assert m["acc2_non0"] == 1.0


def test_sims_bins_and_clipped_mae():
    labels = np.array([-1.0, -0.4, -0.1, 0.1, 0.6, 0.8])
    preds = np.array([-1.6, -0.8, -0.05, 0.1, 0.7, 2.0])
    m = compute_metrics(preds, labels, "sims")
    assert tuple(m) == SIMS_KEYS
    # acc2: x > 0: labels [F,F,F,T,T,T], preds [F,F,F,T,T,T]
    assert m["acc2"] == 1.0
    # acc3 bins (-1.01,-0.1],(-0.1,0.1],(0.1,1.01]: labels [0,0,0,1,2,2] preds [0,0,1,1,2,2]
    assert m["acc3"] == pytest.approx(5 / 6)
    # acc5 edges -0.7,-0.1,0.1,0.7: labels [0,1,1,2,3,4] preds [0,0,2,2,3,4]
    assert m["acc5"] == pytest.approx(4 / 6)
    clipped = np.clip(preds, -1, 1)
    assert m["mae"] == pytest.approx(np.mean(np.abs(clipped - labels)))
    # levels round(2x): labels [-2,-1,-0,0,1,2] preds [-2,-2,-0,0,1,2]
    assert m["mean_abs_jump"] == pytest.approx(1 / 6) and m["jump2"] == 0.0


def test_qwk_perfect_and_reversed():
    x = [-3, -1, 0, 1, 3]
    assert compute_metrics(x, x, "mosi")["qwk"] == 1.0
    assert compute_metrics(x[::-1], x, "mosi")["qwk"] == pytest.approx(-1.0)


def test_accepts_lists_arrays_and_tensors():
    labels = [0.2, -1.0, 2.0]
    preds = [0.1, -0.8, 1.2]
    a = compute_metrics(preds, labels, "mosi")
    b = compute_metrics(np.array(preds), np.array(labels), "mosi")
    c = compute_metrics(torch.tensor(preds), torch.tensor(labels), "mosi")
    assert a == pytest.approx(b) and b == pytest.approx(c)


@pytest.mark.parametrize(
    "preds,labels,dataset,message",
    [
        ([0.1, 0.2], [0.1], "mosi", "differ in length: 2 predictions, 1 labels"),
        ([0.1, float("nan")], [0.1, 0.2], "mosi", "predictions contains 1 NaN"),
        ([0.1, 0.2], [0.1, float("inf")], "sims", "labels contains 1 NaN/inf"),
        ([0.1], [0.1], "imdb", "dataset must be one of"),
        ([], [], "mosi", "predictions is empty"),
    ],
)
def test_bad_input_raises_clear_error(preds, labels, dataset, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        compute_metrics(preds, labels, dataset)


def test_weighted_f1_and_quadratic_kappa_match_scikit_learn():
    from sklearn.metrics import cohen_kappa_score, f1_score

    from crosssent.metrics import quadratic_kappa, weighted_f1

    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50, 500):
        for bias in (0.0, 0.1, 0.5, 0.9, 1.0):  # 0 and 1: one class only on one or both sides
            truth, pred = rng.random(n) < bias, rng.random(n) < 0.5
            assert weighted_f1(truth, pred) == pytest.approx(f1_score(truth, pred, average="weighted"), abs=1e-12)
            assert weighted_f1(truth, truth) == pytest.approx(f1_score(truth, truth, average="weighted"), abs=1e-12)
        labels, preds = rng.integers(-3, 4, n), np.clip(rng.integers(-3, 4, n) + rng.integers(-1, 2, n), -3, 3)
        if not np.array_equal(labels, preds):
            expected = cohen_kappa_score(labels, preds, labels=list(range(-3, 4)), weights="quadratic")
            assert quadratic_kappa(labels, preds, range(-3, 4)) == pytest.approx(expected, abs=1e-12)
