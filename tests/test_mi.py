"IIC's loss at its edges: shapes, bf16 inputs, a batch of one."
import math

import pytest
import torch

from tunit_nb.mi import iic_loss, joint_distribution


def test_shapes_must_match():
    with pytest.raises(ValueError, match=r'\(batch, k\)'): iic_loss(torch.ones(4, 3) / 3, torch.ones(4, 2) / 2)
    with pytest.raises(ValueError, match=r'\(batch, k\)'): joint_distribution(torch.ones(3), torch.ones(3))


def test_bf16_probabilities_are_summed_in_float32():
    p = torch.rand(64, 10).softmax(1)
    assert joint_distribution(p.bfloat16(), p.bfloat16()).dtype == torch.float32
    assert iic_loss(p.bfloat16(), p.bfloat16()).dtype == torch.float32


def test_a_batch_of_one_image_shares_no_information():
    p = torch.tensor([[0.9, 0.1]])
    loss = iic_loss(p, p)
    assert torch.isfinite(loss) and -math.log(2) <= loss.item() <= 1e-6
