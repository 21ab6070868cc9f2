"The model: a trained model is loaded from a training checkpoint's state; inference methods keep the device and the mode."
import pytest
import torch

from tunit_nb.config import TrainConfig
from tunit_nb.data import Digits
from tunit_nb.model import TunitModel

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    cfg = TrainConfig.preset('tiny')
    full, trained = TunitModel(cfg), TunitModel(cfg, inference=True)
    own = dict(trained.named_children())
    trained.load_state_dict({n: t for n, t in full.state_dict().items() if n.split('.')[0] in own})   # as load_run does
    return full, trained


def test_a_trained_model_is_the_full_models_ema_copies(models):
    full, trained = models
    x = Digits('heldout', size=32).images[:5]
    assert torch.equal(full.style(x), trained.style(x)) and torch.equal(full.translate(x, x.flip(0)), trained.translate(x, x.flip(0)))
    assert not any(p.requires_grad for p in trained.parameters())          # nothing of it is trained further
    assert trained.device == torch.device('cpu') and trained.metrics == {} and trained.history == []


def test_methods_take_any_number_of_images_in_batches(models):
    _, trained = models
    x = Digits('heldout', size=32).images[:7]
    assert trained.domain(x, batch_size=3).shape == (7,)
    assert trained.translate_style(x, trained.style(x[:1])[0], batch_size=2).shape == (7, 3, 32, 32)
    with pytest.raises(ValueError, match='no images'): trained.style(x[:0])
