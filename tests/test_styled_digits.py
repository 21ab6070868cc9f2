"The styled digits: two factors kept apart (domain balanced and independent of the digit), fixed looks, splits, judges."
import numpy as np
import pytest
import torch

from tunit_nb.loading import get_dataset
from tunit_nb.styled_digits import STYLE_DOMAINS, StyledDigits, fit_judges, render_style


@pytest.fixture(scope='module')
def full():
    return StyledDigits('all', size=16)


def test_domains_are_balanced_and_independent_of_the_digit(full):
    counts = np.zeros((len(STYLE_DOMAINS), 10), dtype=int)
    np.add.at(counts, (full.targets.numpy(), full.contents.numpy()), 1)
    assert counts.sum() == 1797 and counts.sum(1).max() - counts.sum(1).min() <= 1
    expected = np.outer(counts.sum(1), counts.sum(0)) / counts.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 70                                  # 36 degrees of freedom: p > 0.001 under independence


def test_the_split_is_stratified_by_both_factors_and_disjoint(full):
    train, held = StyledDigits('train', size=16, seed=4), StyledDigits('heldout', size=16, seed=4)
    assert len(train) + len(held) == 1797 and not set(train.indices) & set(held.indices)
    pair = lambda ds: np.bincount(ds.targets.numpy() * 10 + ds.contents.numpy(), minlength=50)
    assert np.abs(pair(held) / pair(full) - 0.2).max() < 0.1
    assert torch.equal(full.images[held.indices], held.images) and torch.equal(full.contents[held.indices], held.contents)


def test_each_domain_has_its_own_colours_and_keeps_the_strokes():
    ink = torch.zeros(4, 1, 16, 16); ink[:, :, 4:12, 7:9] = 1           # a bar
    u = torch.linspace(-1, 1, 48).view(4, 12)
    drawn = [render_style(ink, k, u) for k in range(len(STYLE_DOMAINS))]
    for k, img in enumerate(drawn):
        assert img.shape == (4, 3, 16, 16) and 0 <= img.min() and img.max() <= 1
        assert (img[:, :, 4:12, 6:10] - render_style(torch.zeros_like(ink), k, u)[:, :, 4:12, 6:10]).abs().amax() > 0.3, STYLE_DOMAINS[k]
    palette = torch.stack([torch.quantile(img.transpose(0, 1).flatten(1), torch.tensor([0.1, 0.9]), dim=1).flatten()
                           for img in drawn])                        # darkest and brightest tenth per channel
    assert (torch.cdist(palette, palette) + torch.eye(len(drawn))).min() > 0.2


def test_get_dataset_and_transform():
    held = get_dataset('styled-digits', 'heldout', size=16)
    assert isinstance(held, StyledDigits) and held.images.shape == (360, 3, 16, 16)
    x, y = get_dataset('styled-digits', 'heldout', size=16, transform=lambda t: t.float())[3]
    assert x.dtype == torch.float32 and y == int(held.targets[3])
    with pytest.raises(ValueError, match='split must be'): StyledDigits('validation')


def test_judges_read_domain_and_digit_on_real_images():
    train, held = StyledDigits('train'), StyledDigits('heldout')
    judges = fit_judges('styled-digits', train)
    assert judges['classifier'].score(held.images, held.targets) >= 0.99
    assert judges['content_classifier'].score(held.images, held.contents) >= 0.95
    assert fit_judges('elsewhere', train) == {}
