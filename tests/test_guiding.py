"Slower checks of E's warm-up: a short run beats chance on held-out digits; EMA copies; checkpoints of E."
import warnings

import pytest
import torch

from tunit_nb.data import Digits
from tunit_nb.evaluation import cluster_metrics
from tunit_nb.guiding import GuidingNet, small_vgg, ema_copy, ema_update
from tunit_nb.training import (TrainConfig, train_guiding, predict, check_clusters, ClusterCollapseWarning,
                               guiding_loss, make_guiding_net)


def test_short_warmup_beats_chance():
    "400 steps of the digits recipe (under a minute) already cluster held-out digits far better than chance (0.1-0.15)."
    torch.set_num_threads(1)
    cfg = TrainConfig.preset('digits', seed=0, restarts=1)
    run = train_guiding(cfg, Digits('train', size=cfg.size), iters=400, check_every=0)
    held = Digits('heldout', size=cfg.size)
    pseudo = predict(run.model.guiding, held.images.float() / 127.5 - 1)
    m = cluster_metrics(held.targets, pseudo)
    assert m['clustering_accuracy'] > 0.4 and m['nmi'] > 0.4, m
    assert len(run.head_losses) == cfg.n_heads and min(run.head_losses) < -0.5


def test_ema_copies_buffers_and_follows_parameters():
    net = GuidingNet(k=4, sty_dim=8, cfg=small_vgg(8, 2), n_heads=3)
    ema = ema_copy(net)
    net(torch.randn(16, 3, 16, 16))                   # moves BatchNorm statistics
    net.select_head(2)
    before = [p.clone() for p in ema.parameters()]
    with torch.no_grad():
        for p in net.parameters(): p.add_(1.)
    ema_update(ema, net, momentum=0.999)
    for b_ema, b in zip(ema.buffers(), net.buffers()): assert torch.equal(b_ema, b)
    assert int(ema.head) == 2
    for p0, p_ema, p in zip(before, ema.parameters(), net.parameters()):
        torch.testing.assert_close(p_ema, 0.999 * p0 + 0.001 * p)
    for _ in range(20000): ema_update(ema, net, momentum=0.999)   # converges on the model's weights
    for p_ema, p in zip(ema.parameters(), net.parameters()): torch.testing.assert_close(p_ema, p, atol=1e-4, rtol=0)


def test_checkpoint_roundtrip_keeps_selected_head(tmp_path):
    cfg = TrainConfig.preset('tiny')
    net = make_guiding_net(cfg).select_head(1).eval()
    torch.save(net.state_dict(), tmp_path / 'e.pt')
    other = make_guiding_net(cfg).eval()
    other.load_state_dict(torch.load(tmp_path / 'e.pt'))
    x = torch.randn(4, 3, cfg.size, cfg.size)
    assert int(other.head) == 1
    torch.testing.assert_close(other(x)[0], net(x)[0])


def test_collapse_warning_during_training():
    "A learning rate far too high collapses the clustering; the loop says so."
    cfg = TrainConfig.preset('tiny', lr=10.)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        train_guiding(cfg, Digits('train', size=cfg.size), iters=20, check_every=10)
    assert any(w.category is ClusterCollapseWarning for w in caught)


def test_loss_with_several_views_pairs_each_view_with_its_image():
    "With r views per x, swapping the views' order changes nothing (each view is paired with its own x)."
    cfg = TrainConfig.preset('tiny', repeats=2)
    # float64: the views' order changes the batches' order, so the kernels' summation order; not the values
    net, x = make_guiding_net(cfg).double().eval(), torch.randn(8, 3, cfg.size, cfg.size, dtype=torch.float64)
    ema = ema_copy(net)
    a, b = torch.randn_like(x), torch.randn_like(x)
    t1, p1 = guiding_loss(net, ema, x, torch.cat([a, b]), None, cfg)
    t2, p2 = guiding_loss(net, ema, x, torch.cat([b, a]), None, cfg)
    torch.testing.assert_close(p1['iic'], p2['iic'], atol=1e-12, rtol=0)
