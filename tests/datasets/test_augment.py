"""Event-frame augmentations (dvsstream.datasets.augment)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dvsstream.datasets.augment import (
    OPS,
    AugmentConfig,
    augment_batch,
    cutout,
    hflip,
    mixup,
    one_hot_smooth,
    rotate,
    shear_x,
    thin_events,
    translate,
    zoom,
)
from dvsstream.errors import DvsstreamError
from dvsstream.training.config import TrainConfig


def _frames(b=6, t=3, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.rand(b, t, 2, h, w, generator=g) * 2, generator=g)


def test_identity_policy_without_flip_returns_a_copy():
    x = _frames()
    before = x.clone()
    y = augment_batch(x, AugmentConfig(hflip=False, ops=("identity",)), torch.Generator().manual_seed(1))
    assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()
    assert torch.equal(x, before)


def test_flip_mirrors_some_samples_and_only_mirrors():
    x = _frames(b=32)
    y = augment_batch(x, AugmentConfig(hflip=True, ops=("identity",)), torch.Generator().manual_seed(0))
    same = [torch.equal(y[i], x[i]) for i in range(32)]
    mirrored = [torch.equal(y[i], x[i].flip(-1)) for i in range(32)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 4 < sum(mirrored) < 28 and sum(same) > 4


def test_no_hflip_never_mirrors():
    # a sample whose left half is empty: no op of the policy but a flip can fill the
    # right-most columns while emptying the left ones this way
    x = torch.zeros(64, 2, 2, 32, 32)
    x[..., :, 20:30] = 1.0
    for hflip_on in (False, True):
        y = augment_batch(x, AugmentConfig(hflip=hflip_on, ops=("identity",)), torch.Generator().manual_seed(3))
        mirrored = sum(bool(y[i, ..., :, 2:12].sum() > 0) for i in range(64))
        assert (mirrored > 0) == hflip_on


def test_same_op_for_every_time_step_and_channel():
    base = _frames(b=48, t=1)
    x = base.expand(48, 5, 2, 16, 16).clone()
    x[:, :, 1] = x[:, :, 0]
    y = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(7))
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert torch.equal(y[:, :, 0], y[:, :, 1])
    # and most samples did change
    assert sum(not torch.equal(y[i], x[i]) for i in range(48)) > 24


def test_reproducible_with_a_generator():
    x = _frames(b=16)
    a = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(5))
    b = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(5))
    c = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_translate_is_an_exact_shift_with_zero_fill():
    x = _frames(b=2)
    y = translate(x, 3, -2)
    assert torch.equal(y[..., :-2, 3:], x[..., 2:, :-3])
    assert y[..., :, :3].abs().sum() == 0 and y[..., -2:, :].abs().sum() == 0
    # per-sample amounts, and the 4-D form
    y2 = translate(x, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert torch.equal(y2[0, ..., 1:], x[0, ..., :-1]) and torch.equal(y2[1, ..., 1:, :], x[1, ..., :-1, :])
    assert torch.equal(translate(x[0], 1, 0)[..., 1:], x[0, ..., :-1])


def test_rotate_quarter_turns_are_exact_and_counter_clockwise():
    x = _frames(b=2)
    assert torch.equal(rotate(x, 0.0), x)
    assert torch.equal(rotate(x, 90.0), torch.rot90(x, 1, (-2, -1)))
    assert torch.equal(rotate(rotate(x, 90.0), -90.0), x)
    dot = torch.zeros(1, 1, 1, 8, 8)
    dot[..., 3, 7] = 1.0  # right of the centre
    assert rotate(dot, 90.0)[0, 0, 0].nonzero().tolist() == [[0, 3]]  # -> above it


def test_rotate_keeps_most_counts_of_a_central_blob():
    x = torch.zeros(1, 1, 2, 32, 32)
    x[..., 12:20, 12:20] = 1.0
    y = rotate(x, 30.0)
    assert abs(float(y.sum()) - float(x.sum())) / float(x.sum()) < 0.1
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0}  # nearest neighbour: no interpolation


def test_shear_x_moves_rows_in_proportion_to_their_height():
    x = torch.zeros(1, 1, 1, 17, 17)
    x[..., :, 8] = 1.0  # the central column
    y = shear_x(x, 0.5)[0, 0, 0]
    # out(u, v) = in(u + 0.5 v): the column becomes the line u = -0.5 v
    for row in (0, 4, 8, 12, 16):
        v = row - 8
        assert y[row].nonzero().flatten().tolist() == [8 - v // 2]
    assert torch.equal(shear_x(x, 0.0), x)


def test_cutout_zeroes_a_clipped_square_in_all_steps_and_channels():
    x = torch.ones(2, 3, 2, 10, 10)
    y = cutout(x, cx=torch.tensor([5.0, 0.0]), cy=torch.tensor([5.0, 0.0]), size=torch.tensor([4.0, 4.0]))
    assert torch.equal(y[0, :, :, 3:7, 3:7], torch.zeros(3, 2, 4, 4))
    assert float(y[0].sum()) == 3 * 2 * (100 - 16)
    assert torch.equal(y[1, :, :, 0:2, 0:2], torch.zeros(3, 2, 2, 2))
    assert float(y[1].sum()) == 3 * 2 * (100 - 4)


def test_amounts_scale_with_the_frame_size():
    # 64-pixel frames: translation up to 5 * 64 / 128 = 2.5 -> at most 2 or 3 pixels
    x = torch.zeros(200, 1, 1, 64, 64)
    x[..., 32, 32] = 1.0
    y = augment_batch(x, AugmentConfig(hflip=False, ops=("translate_x",)), torch.Generator().manual_seed(0))
    cols = y[:, 0, 0, 32].argmax(-1) - 32
    assert int(cols.abs().max()) <= 3 and int(cols.abs().max()) >= 2
    assert torch.equal(y.sum((1, 2, 3, 4)), torch.ones(200))


def test_every_op_runs_and_unknown_ops_are_refused():
    x = _frames(b=4)
    for op in OPS:
        y = augment_batch(x, AugmentConfig(ops=(op,)), torch.Generator().manual_seed(0))
        assert y.shape == x.shape and torch.isfinite(y).all()
    with pytest.raises(ValueError):
        AugmentConfig(ops=("solarize",))


def test_hflip_with_mask():
    x = _frames(b=3)
    y = hflip(x, torch.tensor([True, False, True]))
    assert torch.equal(y[0], x[0].flip(-1)) and torch.equal(y[1], x[1]) and torch.equal(y[2], x[2].flip(-1))


def test_one_hot_smooth_matches_cross_entropy_label_smoothing():
    logits = torch.randn(5, 4)
    labels = torch.tensor([0, 3, 1, 2, 3])
    t = one_hot_smooth(labels, 4, 0.1)
    assert torch.allclose(t.sum(1), torch.ones(5))
    ours = torch.sum(-t * F.log_softmax(logits, -1), -1).mean()
    assert torch.allclose(ours, F.cross_entropy(logits, labels, label_smoothing=0.1))


def test_mixup_mixes_with_the_reversed_batch():
    x = _frames(b=4)
    t = one_hot_smooth(torch.tensor([0, 1, 2, 0]), 3, 0.1)
    xm, tm, lam = mixup(x, t, 0.5, torch.Generator().manual_seed(2))
    assert 0.0 <= lam <= 1.0
    assert torch.allclose(xm, lam * x + (1 - lam) * x.flip(0))
    assert torch.allclose(tm, lam * t + (1 - lam) * t.flip(0))
    assert torch.allclose(tm.sum(1), torch.ones(4))
    lams = [mixup(x, t, 0.5, torch.Generator().manual_seed(s))[2] for s in range(200)]
    assert 0.4 < sum(lams) / len(lams) < 0.6  # Beta(0.5, 0.5) has mean 0.5


def test_zoom_scales_about_the_centre():
    x = torch.zeros(1, 1, 1, 16, 16)
    x[..., 6:10, 6:10] = 1.0  # a centred 4 x 4 square
    bigger = zoom(x, 2.0)
    assert torch.equal(bigger[0, 0, 0].nonzero().amin(0), torch.tensor([4, 4]))
    assert torch.equal(bigger[0, 0, 0].nonzero().amax(0), torch.tensor([11, 11]))
    assert float(bigger.sum()) == 64.0
    smaller = zoom(bigger, 0.5)
    rows = smaller[0, 0, 0].sum(1).nonzero().flatten()
    assert 4 <= len(rows) <= 5 and 5 <= int(rows.min()) <= 6


def test_thinning_keeps_whole_counts_and_the_asked_share():
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((2, 4, 2, 32, 32), 5.0), generator=g)
    y = thin_events(x, torch.tensor([0.25, 1.0]), torch.Generator().manual_seed(1))
    assert torch.equal(y, y.round()) and bool((y <= x).all()) and bool((y >= 0).all())
    assert torch.equal(y[1], x[1])  # keep everything
    share = float(y[0].sum() / x[0].sum())
    assert abs(share - 0.25) < 0.02


def test_thinning_is_drawn_after_the_papers_ops():
    x = _frames(b=16)
    papers = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(3))
    thinned = augment_batch(x, AugmentConfig(keep_events=0.5), torch.Generator().manual_seed(3))
    assert bool((thinned <= papers).all()) and float(thinned.sum()) < float(papers.sum())
    kept = thinned.sum((1, 2, 3, 4)) / papers.sum((1, 2, 3, 4)).clamp(min=1)
    assert float(kept.min()) > 0.3 and float(kept.max()) <= 1.0


def test_train_config_turns_zoom_and_thinning_on_and_checks_them():
    assert TrainConfig().augment_config() == AugmentConfig(hflip=True)
    aug = TrainConfig(zoom=1.4, keep_events=0.3).augment_config()
    assert "zoom" in aug.ops and aug.zoom == 1.4 and aug.keep_events == 0.3
    for bad in ({"zoom": 0.5}, {"keep_events": 0.0}, {"keep_events": 1.5}):
        with pytest.raises(DvsstreamError):
            TrainConfig(**bad)
