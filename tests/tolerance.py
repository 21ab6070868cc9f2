"""How far apart two floating-point evaluations of the same sums may be, from the sums themselves.

Two kernels (another batch size, memory layout, thread count or processor) add the same products in another
order and blocking, so their results differ in the last bits. How much follows from the sum: a sum of n
products computed in a format of unit roundoff u lies within lam * sqrt(n) * u * sum(|products|) of the exact
value, except with probability at most 2n * exp(-lam**2 / 2) (Higham and Mary, "A new approach to
probabilistic rounding error analysis", SIAM J. Sci. Comput. 2019); two evaluations lie within twice that of
each other. With lam = 8 a sum exceeds it with probability below 1e-10 per term, on any processor.
"""
import math

import torch

UNIT_ROUNDOFF = {torch.float32: 2.0 ** -24, torch.float64: 2.0 ** -53, torch.bfloat16: 2.0 ** -8}
LAM = 8.


def sum_gap(n_terms:int, magnitude, dtype=torch.float32):
    "The most two evaluations of sums of `n_terms` products may differ, given the sums of the products' magnitudes."
    return 2 * LAM * math.sqrt(n_terms) * UNIT_ROUNDOFF[dtype] * magnitude


def assert_within(actual:torch.Tensor, expected:torch.Tensor, tolerance, what:str=''):
    "Each element of `actual` within its own `tolerance` (a tensor of their shape, or a number) of `expected`."
    gap = (actual.double() - expected.double()).abs()
    tolerance = torch.as_tensor(tolerance, dtype=torch.float64).expand_as(gap)
    worst = int((gap / tolerance).flatten().argmax())
    assert (gap <= tolerance).all(), (f"{what}: {int((gap > tolerance).sum())} of {gap.numel()} elements differ by more "
                                      f"than their tolerance; the worst by {gap.flatten()[worst].item():.3g} against "
                                      f"{tolerance.flatten()[worst].item():.3g}")
