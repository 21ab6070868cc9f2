"E's warm-up loss: views are paired with their own images."
import torch

from tunit_nb.clustering import guiding_loss
from tunit_nb.config import TrainConfig
from tunit_nb.guiding import ema_copy
from tunit_nb.model import make_guiding_net


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
