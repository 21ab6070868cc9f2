"Choosing K: the measures' properties, and a survey on a folder end to end (tiny settings: its numbers mean nothing)."
import json
import pytest
import torch

from tunit_nb.choose_k import evenness, suggest_k, survey_k
from tunit_nb.data import Digits, save_images


@pytest.mark.parametrize('k', [2, 5, 17])
def test_evenness_is_one_for_equal_clusters_and_falls_with_imbalance(k):
    assert evenness(torch.arange(10 * k) % k, k) == pytest.approx(1.0)
    skewed = torch.cat([torch.zeros(9 * k, dtype=torch.long), torch.arange(k)])
    assert 0 < evenness(skewed, k) < 0.6
    assert evenness(torch.zeros(5, dtype=torch.long), k) == 0.0


def test_suggestion_prefers_agreement_then_larger_k_and_skips_uneven():
    rows = [dict(k=2, agreement=0.9, evenness=0.95), dict(k=4, agreement=0.9, evenness=0.9),
            dict(k=8, agreement=0.95, evenness=0.3)]
    k, why = suggest_k(rows)
    assert k == 4 and why.startswith('K=4') and 'evenness >= 0.8' in why
    assert suggest_k([dict(k=3, agreement=0.1, evenness=0.1)])[0] == 3   # nothing even: the best of all


def test_a_survey_of_a_folder_with_the_same_seed_twice_agrees_fully(tmp_path):
    digits = Digits('all', size=32)
    save_images(digits.images[:120], tmp_path / 'data', digits.targets[:120] % 2, classes=['even', 'odd'])
    result = survey_k(str(tmp_path / 'data'), [2, 3], seeds=(0, 0), preset='tiny', iters=8, out=tmp_path / 'out',
                      batch_size=8, warmup_batch_size=16)
    assert [r['k'] for r in result['rows']] == [2, 3]
    for r in result['rows']:
        assert r['agreement'] == pytest.approx(1.0)          # the same seed trains the same E: a deterministic run
        assert 0 <= r['evenness'] <= 1 and 0 <= r['clustering_accuracy'] <= 1 and r['mi'] <= 1 + 1e-6
    assert result['suggested_k'] == 3                          # equal agreement: the larger K
    saved = json.loads((tmp_path / 'out' / 'survey.json').read_text())
    assert saved['suggested_k'] == 3 and (tmp_path / 'out' / 'clusters-k2.png').is_file()
