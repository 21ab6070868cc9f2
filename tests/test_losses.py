"Tests of tunit_nb.losses: hand-computed values, R1 against closed forms, finite gradients, the contrastive reuse."
import pytest
import torch

from tunit_nb.contrastive import contrastive_loss
from tunit_nb.discriminator import Discriminator
from tunit_nb.losses import d_hinge_loss, d_loss, g_hinge_loss, g_loss, g_style_loss, r1_penalty, recon_loss


def test_hinge_values():
    real, fake = torch.tensor([2., 0.5, -1.]), torch.tensor([-2., 0., 1.5])
    torch.testing.assert_close(d_hinge_loss(real, fake), torch.tensor(2.5 / 3 + 3.5 / 3))
    torch.testing.assert_close(g_hinge_loss(fake), torch.tensor(0.5 / 3))
    assert d_hinge_loss(torch.ones(5) * 3, -torch.ones(5) * 3) == 0


def test_recon_values():
    x = torch.zeros(2, 3, 4, 4)
    torch.testing.assert_close(recon_loss(x + 0.5, x), torch.tensor(0.5))
    torch.testing.assert_close(recon_loss(x, x), torch.tensor(0.))


def test_r1_linear_discriminator():
    torch.manual_seed(0)
    w = torch.randn(3 * 8 * 8, requires_grad=True)
    x = torch.randn(5, 3, 8, 8, requires_grad=True)
    r1 = r1_penalty(x.flatten(1) @ w, x)
    torch.testing.assert_close(r1, w.detach().square().sum())
    r1.backward()
    torch.testing.assert_close(w.grad, 2 * w.detach())


def test_r1_per_sample_gradients():
    # D(x_i) = a_i * sum(x_i): per-sample slopes differ, R1 = mean_i a_i^2 * numel
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    a = torch.tensor([1., 2., 3., 4.])
    torch.testing.assert_close(r1_penalty(a * x.sum((1, 2, 3)), x), (a.square() * 18).mean())


def test_r1_zero_slope_is_finite():
    x = torch.zeros(3, 3, 4, 4, requires_grad=True)
    c = torch.tensor(2., requires_grad=True)
    r1 = r1_penalty(c * x.square().sum((1, 2, 3)), x)    # gradient 2 c x = 0 at x = 0
    r1.backward()
    assert r1 == 0 and torch.isfinite(c.grad)
    assert r1_penalty(c * torch.ones(3), x) == 0           # D that ignores x


def test_r1_errors():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match='requires_grad_'):
        r1_penalty(x.sum(1), x)
    xg = x.clone().requires_grad_()
    with pytest.raises(ValueError, match='no graph'):
        r1_penalty(torch.ones(2), xg)


def test_d_loss_with_real_discriminator_gradients_finite():
    torch.manual_seed(0)
    D = Discriminator(32, num_domains=4, width=8, max_dim=16, blocks=1)
    x_real = (torch.rand(6, 3, 32, 32) * 2 - 1).requires_grad_()
    fake = torch.rand(6, 3, 32, 32) * 2 - 1
    domain = torch.tensor([0, 1, 2, 3, 0, 1])
    total, parts = d_loss(D(x_real, domain), D(fake, domain), x_real)
    total.backward()
    assert parts['d_r1'] > 0
    torch.testing.assert_close(total.detach(), parts['d_adv'] + 10 * parts['d_r1'])
    assert all(torch.isfinite(p.grad).all() for p in D.parameters())
    total0, parts0 = d_loss(D(x_real, domain), D(fake, domain), x_real, r1_weight=0)
    assert parts0['d_r1'] == 0


def test_g_style_loss_reuses_contrastive_and_detaches_key():
    torch.manual_seed(0)
    q, k, queue = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True), torch.randn(16, 8)
    loss = g_style_loss(q, k, queue)
    torch.testing.assert_close(loss, contrastive_loss(q, k, queue, tau=0.07, normalize=True))
    loss.backward()
    assert k.grad is None and torch.isfinite(q.grad).all()


def test_g_loss_parts():
    torch.manual_seed(0)
    x = torch.zeros(2, 3, 4, 4)
    q, k = torch.randn(2, 8), torch.randn(2, 8)
    total, parts = g_loss(torch.tensor([1., 3.]), torch.tensor([0., 2.]), x + 0.5, x, q, k, None)
    torch.testing.assert_close(parts['g_adv'], torch.tensor(-3.))
    torch.testing.assert_close(parts['g_rec'], torch.tensor(0.5))
    torch.testing.assert_close(total, -3. + 0.05 + 0.01 * parts['g_style'])


def test_g_style_loss_accepts_key_queue():
    from tunit_nb.contrastive import KeyQueue
    torch.manual_seed(0)
    q, k, keys = torch.randn(4, 8), torch.randn(4, 8), torch.randn(16, 8)
    queue = KeyQueue(32, 8)
    queue.push(keys)
    torch.testing.assert_close(g_style_loss(q, k, queue), g_style_loss(q, k, queue.keys))
