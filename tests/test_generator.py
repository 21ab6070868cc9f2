"Tests of tunit_nb.generator: shapes, range, sizes, AdaIN, parameter counts, encode/decode reuse, UpConv."
import pytest
import torch
import torch.nn.functional as F

from tunit_nb.data import Digits
from tunit_nb.generator import Generator, UpConv, adain, conv, mix_grid
from tunit_nb.layers import check_size
from tolerance import UNIT_ROUNDOFF, assert_within, sum_gap


def n_params(m): return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope='module')
def x32():
    return Digits('heldout', size=32).images[:4].float() / 127.5 - 1


@pytest.mark.parametrize('size', [32, 64, 128, 256])
def test_shapes_and_range(size):
    torch.manual_seed(0)
    G = Generator(size, sty_dim=16, width=8, n_res=1, mlp_dim=16)
    x, s = torch.rand(2, 3, size, size) * 2 - 1, torch.randn(2, 16)
    content = G.encode(x)
    assert content.shape == (2, 8 * size // 16, 16, 16)
    y = G.decode(content, s)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1  # tanh; float32 rounds |y| near 1 to 1


@pytest.mark.parametrize('size', [0, 16, 31, 48, 100, 96, 33.0, '64'])
def test_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match='power of two >= 32'):
        Generator(size)
    with pytest.raises(ValueError):
        check_size(size)


def test_reference_parameter_counts():
    # reference (clovaai/tunit, nf 64 below 256 px, MLP 256, 2 res blocks, style 128): G 7.1 M at 64 px
    assert n_params(Generator(64)) == 7_143_299
    assert n_params(Generator(32)) < n_params(Generator(64)) < n_params(Generator(128))


def test_adain_statistics():
    torch.manual_seed(0)
    h = torch.randn(3, 5, 8, 8) * 4 + 2
    scale, bias = torch.rand(3, 5) + 0.5, torch.randn(3, 5)
    out = adain(h, scale, bias)
    var, mean = torch.var_mean(out, dim=(2, 3), correction=0)
    torch.testing.assert_close(mean, bias, atol=1e-4, rtol=0)
    torch.testing.assert_close(var.sqrt(), scale, atol=1e-3, rtol=0)


def test_adain_channels_last():
    "The memory layout changes the kernels, not the maths: in float64 the two agree far below any real difference."
    h = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    scale, bias = torch.rand(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    torch.testing.assert_close(adain(h.to(memory_format=torch.channels_last), scale, bias), adain(h, scale, bias),
                               atol=1e-12, rtol=0)


def _abs_terms(up:UpConv, x:torch.Tensor, g:torch.Tensor) -> tuple:
    """Per element, the sums of the magnitudes of the products that make the upsampling convolution's output and
    its gradients: the same bilinear maps taken on |x|, |weights| and |upstream gradient|."""
    plain = conv(up.in_channels, up.out_channels, up.kernel_size[0])
    plain.load_state_dict({name: t.abs() for name, t in up.state_dict().items()})
    x_abs = x.detach().abs().requires_grad_()
    out = plain(F.interpolate(x_abs, scale_factor=2., mode='nearest'))
    return (out.detach(), *torch.autograd.grad(out, [x_abs, plain.weight, plain.bias], g.abs()))


@pytest.mark.parametrize('channels_last', [False, True])
def test_upconv_is_upsample_then_conv(channels_last):
    "The paper generator's two upsampling layers at 64 px, against the reference's upsample + 5x5 convolution."
    torch.manual_seed(0)
    G = Generator(64)
    for up, side in zip(G.decoder.up, (16, 32)):
        assert isinstance(up, UpConv) and up.kernel_size == (5, 5)
        plain = conv(up.in_channels, up.out_channels, 5); plain.load_state_dict(up.state_dict())
        x = torch.randn(2, up.in_channels, side, side)
        if channels_last: x = x.to(memory_format=torch.channels_last)
        x.requires_grad_()
        fast, ref = up(x), plain(F.interpolate(x, scale_factor=2., mode='nearest'))
        g = torch.randn_like(ref)
        # each output sums c_in * 25 products (the sub-pixel kernels first add up to four taps); each input gradient
        # 4 * 25 * c_out (the upsampling's copies); each weight and bias gradient one per output pixel of the batch
        terms = (up.in_channels * 25 + 4, 4 * 25 * up.out_channels, ref[:, 0].numel(), ref[:, 0].numel())
        magnitudes = _abs_terms(up, x, g)
        results = zip(('output', 'input gradient', 'weight gradient', 'bias gradient'), terms, magnitudes,
                      (fast, *torch.autograd.grad(fast, [x, up.weight, up.bias], g)),
                      (ref, *torch.autograd.grad(ref, [x, plain.weight, plain.bias], g)))
        for what, n, magnitude, a, b in results:
            assert_within(a, b, sum_gap(n, magnitude), f'{side} px {what}')


def test_upconv_under_bf16_autocast():
    torch.manual_seed(0)
    up = UpConv(16, 8, 5, padding=2, padding_mode='reflect'); plain = conv(16, 8, 5); plain.load_state_dict(up.state_dict())
    x = torch.randn(2, 16, 8, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        fast, ref = up(x), plain(F.interpolate(x, scale_factor=2., mode='nearest'))
    assert fast.dtype == ref.dtype == torch.bfloat16
    # bf16 rounds each factor (the two paths round different weights: taps, or their sums) and each result;
    # float32 accumulates: at most 2 * 3u of the products' magnitudes apart, plus u of each result
    u, magnitude = UNIT_ROUNDOFF[torch.bfloat16], _abs_terms(up, x, torch.zeros(2, 8, 16, 16))[0]
    assert_within(fast, ref, 6 * u * magnitude + u * (fast.float().abs() + ref.float().abs()), 'bf16 output')


def test_decode_reuses_content(x32):
    torch.manual_seed(0)
    G = Generator(32, sty_dim=16, width=8, n_res=1, mlp_dim=16)
    s1, s2 = torch.randn(4, 16), torch.randn(4, 16)
    content = G.encode(x32)
    torch.testing.assert_close(G.decode(content, s1), G(x32, s1))
    torch.testing.assert_close(G.decode(content, s2), G(x32, s2))
    with pytest.raises(ValueError, match='one style per content map'):
        G.decode(content, s1[:2])


def test_style_changes_output_and_gradients_flow(x32):
    torch.manual_seed(0)
    G = Generator(32, sty_dim=16, width=8, n_res=1, mlp_dim=16)
    s = torch.randn(4, 16, requires_grad=True)
    y = G(x32, s)
    assert (y - G(x32, torch.randn(4, 16))).abs().mean() > 1e-3
    F.l1_loss(y, x32).backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in G.parameters() if p.grad is not None)
    assert all(p.grad is not None for p in G.parameters())


def test_mix_grid_layout(x32):
    G = Generator(32, sty_dim=16, width=8, n_res=1, mlp_dim=16).double()   # float64: other batch sizes, same values
    ref_style, x32 = torch.randn(3, 16, dtype=torch.float64), x32.double()
    grid = mix_grid(G, x32[:2], x32[:3], ref_style)
    assert grid.shape == (3 * 4, 3, 32, 32)
    torch.testing.assert_close(grid[1:4], x32[:3])           # first row: references
    torch.testing.assert_close(grid[4], x32[0])              # first column: sources
    with torch.no_grad():
        torch.testing.assert_close(grid[4 + 2], G(x32[:1], ref_style[1:2])[0], atol=1e-12, rtol=0)
