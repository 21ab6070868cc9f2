"Shared layers: what sizes G and D accept, and the initialisation they share."
import pytest
import torch.nn as nn

from tunit_nb.layers import check_size, kaiming_init


@pytest.mark.parametrize('size', [True, 0, -64, 31, 48, 64.0, '64', None])
def test_check_size_refuses_what_is_not_a_power_of_two_from_32(size):
    with pytest.raises(ValueError, match='power of two >= 32'): check_size(size)


def test_kaiming_init_touches_only_convolutions_and_linear_layers():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Linear(8, 2))
    net[1].weight.data.fill_(3.)
    kaiming_init(net)
    assert net[0].bias is None and (net[1].weight == 3.).all()                # no bias to zero; BatchNorm left alone
    assert (net[2].bias == 0).all() and net[2].weight.std() > 0
