"TrainConfig: every impossible setting is refused, naming the field."
import pytest

from tunit_nb.config import TrainConfig
from tunit_nb.data import Digits
from tunit_nb.trainer import Trainer


@pytest.mark.parametrize('field,value,message', [
    ('size', 48, 'power of two'), ('size', 16, '>= 32'), ('k', 1, 'at least 2'), ('batch_size', 1, 'at least 2'),
    ('heldout', 1.0, 'heldout'), ('backbone', 'resnet', 'backbone'), ('device', 'tpu', 'device')])
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        cfg = TrainConfig.preset('tiny', **{field: value})
        Trainer(cfg, Digits('train', size=32))
