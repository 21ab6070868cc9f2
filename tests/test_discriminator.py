"Tests of tunit_nb.discriminator: shapes, head selection, FRN, parameter counts, domain checks."
import math
import pytest
import torch

from tunit_nb.discriminator import DBlock, Discriminator, FRN


def n_params(m): return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize('size', [32, 64, 128, 256])
def test_shapes(size):
    D = Discriminator(size, num_domains=4, width=8, max_dim=32, blocks=1)
    x = torch.randn(3, 3, size, size)
    assert D.logits(x).shape == (3, 4)
    assert D(x, torch.tensor([0, 3, 1])).shape == (3,)


def test_selection_equals_indexing():
    torch.manual_seed(0)
    D = Discriminator(32, num_domains=5, width=8, max_dim=32, blocks=2)
    x, domain = torch.randn(16, 3, 32, 32), torch.randint(0, 5, (16,))
    full = D.logits(x)
    torch.testing.assert_close(D(x, domain), full[torch.arange(16), domain])
    torch.testing.assert_close(D(x, domain.to(torch.int32)), full[torch.arange(16), domain])


@pytest.mark.parametrize('bad', [[0, 5], [-1, 0], [7, 7]])
def test_rejects_out_of_range_domains(bad):
    D = Discriminator(32, num_domains=5, width=8, max_dim=16, blocks=1)
    with pytest.raises(ValueError, match=r'must lie in \[0, 5\)'):
        D(torch.randn(2, 3, 32, 32), torch.tensor(bad))


def test_rejects_wrong_domain_shape_and_sizes():
    D = Discriminator(32, num_domains=5, width=8, max_dim=16, blocks=1)
    with pytest.raises(ValueError, match='one index per image'):
        D(torch.randn(2, 3, 32, 32), torch.tensor([1, 2, 3]))
    for size in (16, 48, 100):
        with pytest.raises(ValueError, match='power of two'):
            Discriminator(size)
    with pytest.raises(ValueError, match='blocks'):
        Discriminator(32, blocks=0)


def test_reference_parameter_counts():
    # reference (clovaai/tunit): D 33.2 M at 64 px
    assert n_params(Discriminator(64, 10)) == 33_170_122


def test_frn():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 8, 8) * 3 + 1
    frn = FRN(6)
    with torch.no_grad(): frn.tau.fill_(-100.)
    y = frn(x)
    torch.testing.assert_close(y.square().mean((2, 3)), torch.ones(4, 6), atol=1e-4, rtol=0)
    assert (FRN(6)(x) >= 0).all()                     # tau = 0 at init: a ReLU
    x64 = x.double()                                   # float64: one image or four, the same values far below 1e-12
    torch.testing.assert_close(FRN(6).double()(x64[:1]), FRN(6).double()(x64)[:1], atol=1e-12, rtol=0)


def test_dblock_matches_reference_order():
    torch.manual_seed(0)
    # float64: pooling before or after a convolution sums in another order; the same sums agree far below 1e-12
    block, x = DBlock(4, 8, downsample=True).double(), torch.randn(2, 4, 8, 8, dtype=torch.float64)
    r = block.conv2(block.norm2(torch.nn.functional.avg_pool2d(block.conv1(block.norm1(x)), 2)))
    s = torch.nn.functional.avg_pool2d(block.shortcut(x), 2)           # reference: 1x1 conv, then pool
    torch.testing.assert_close(block(x), (s + r) / math.sqrt(2), atol=1e-12, rtol=0)


def test_gradients_finite():
    torch.manual_seed(0)
    D = Discriminator(32, num_domains=3, width=8, max_dim=16, blocks=1)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    D(x, torch.tensor([0, 1, 2, 0])).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
