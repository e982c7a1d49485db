"""The numpy parts of the issue-12 tools on constructed data, where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from vltools.tools import _image_math as m


def test_gda_uses_the_shared_covariance():
    """Two classes whose means differ along a noisy axis and a quiet one: GDA (shared covariance)
    beats nearest class mean, which is misled by the noisy axis."""
    rng = np.random.default_rng(0)
    scale = np.array([6.0, 0.3])
    mu = np.array([[1.5, 0.0], [0.0, 0.6]])
    x = np.concatenate([mu[c] + rng.normal(size=(400, 2)) * scale for c in (0, 1)])
    y = np.repeat([0, 1], 400)
    w, b = m.gda_fit(x[::2], y[::2], 2)
    gda = ((x[1::2] @ w.T + b).argmax(1) == y[1::2]).mean()
    means = np.stack([x[::2][y[::2] == c].mean(0) for c in (0, 1)])
    nearest = (np.linalg.norm(x[1::2, None] - means[None], axis=2).argmin(1) == y[1::2]).mean()
    assert gda > nearest + 0.1 and gda > 0.8


def test_gda_with_one_shot_is_nearest_mean():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    w, b = m.gda_fit(x, np.array([0, 1]), 2)
    q = np.array([[0.9, 0.2], [0.1, 0.7]])
    assert list((q @ w.T + b).argmax(1)) == [0, 1]


def test_tip_adapter_votes_by_affinity():
    cache = m.l2n(np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]]))
    logits = m.tip_adapter_logits(m.l2n(np.array([[0.2, 1.0]])), cache, np.array([0, 1, 1]), 2, 5.5)
    assert logits[0, 1] > logits[0, 0] > 0


def test_gem_interpolates_mean_and_max():
    dense = np.zeros((1, 1, 3, 2))
    dense[0, 0, :, 0] = [1.0, 0.0, 0.0]
    dense[0, 0, :, 1] = [0.2, 0.2, 0.2]
    avg, sharp = m.gem(dense, 1.0)[0], m.gem(dense, 8.0)[0]
    assert avg == pytest.approx(m.l2n(np.array([1 / 3, 0.2])))
    assert sharp[0] > avg[0]  # the peaked channel gains weight as p grows


def test_superglobal_refinement_lifts_a_cluster_member():
    """Relevant images form a tight cluster; one of them (r3) is far from the query but close to the cluster.
    Plain cosine ranks it below a distractor; SuperGlobal's refinement brings it above."""
    e = np.eye(6)
    q = m.l2n(e[0] + 0.6 * e[1])
    rel = [m.l2n(e[0] + 0.5 * e[2]), m.l2n(e[0] + 0.55 * e[2]), m.l2n(e[0] + 0.45 * e[2]), m.l2n(0.8 * e[0] + e[2])]
    dis = [m.l2n(0.6 * e[0] + 0.5 * e[1] + 0.8 * e[3]), m.l2n(e[4]), m.l2n(e[5])]
    cands = np.stack(rel + dis)
    plain = cands @ q
    assert plain[3] < plain[4]
    refined = m.superglobal_rerank(q, cands, k=3)
    assert refined[3] > refined[4]


def test_box_weights_follow_the_centre_crop():
    full = m.box_weights((0, 0, 64, 64), 64, 64, 4, 4)
    assert full == pytest.approx(np.ones((4, 4)))
    left = m.box_weights((0, 0, 32, 64), 64, 64, 4, 4)
    assert left[:, :2] == pytest.approx(np.ones((4, 2))) and left[:, 2:].sum() == 0
    wide = m.box_weights((0, 0, 16, 64), 128, 64, 2, 2)  # cropped away by the centre crop
    assert wide.sum() == 0


def test_nms_and_iou():
    boxes = [[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]]
    assert m.iou(boxes[0], boxes[0]) == 1.0 and m.iou(boxes[0], boxes[2]) == 0.0
    assert m.nms(boxes, np.array([0.9, 0.8, 0.5]), 0.5, 10) == [0, 2]
    assert all(b[2] - b[0] >= 1 and b[3] - b[1] >= 1 for b in m.window_boxes(3, 2))


def test_average_precision_and_spearman():
    assert m.average_precision([True, False, True]) == pytest.approx((1 + 2 / 3) / 2)
    assert m.average_precision([True, False], n_relevant=4) == pytest.approx(0.25)
    assert m.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    with pytest.warns(Warning):
        assert m.spearman([1, 1, 1], [1, 2, 3]) == 0.0


def test_local_matching_rewards_a_consistent_shift():
    from vltools.tools.image import discriminative_weights, local_match_score

    rng = np.random.default_rng(0)
    g = 6
    feats = m.l2n(rng.normal(size=(g * g, 16)))
    xy = np.array([((j + 0.5) / g, (i + 0.5) / g) for i in range(g) for j in range(g)])
    shifted = np.roll(feats.reshape(g, g, 16), 1, axis=1).reshape(-1, 16)  # the same place, one column right
    same, n_same = local_match_score(feats, xy, discriminative_weights(feats), shifted, xy,
                                     discriminative_weights(shifted))
    shuffled = feats[rng.permutation(len(feats))]
    other, n_other = local_match_score(feats, xy, discriminative_weights(feats), shuffled, xy,
                                       discriminative_weights(shuffled))
    assert n_same > n_other and same > other + 0.3
