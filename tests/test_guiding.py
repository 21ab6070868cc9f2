"E on its own: EMA copies, and checkpoints that keep the selected head."
import pytest
import torch

from tunit_nb.data import Digits
from tunit_nb.guiding import GuidingNet, small_vgg, ema_copy, ema_update
from tunit_nb.config import TrainConfig
from tunit_nb.model import make_guiding_net


def test_ema_copies_buffers_and_follows_parameters():
    net = GuidingNet(k=4, sty_dim=8, layers=small_vgg(8, 2), n_heads=3)
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


