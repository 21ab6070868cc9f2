"The model that ships with the package: what its file holds, how it loads, and that it is as good as it says."
import json, os, subprocess, sys

import pytest
import torch

from tunit_nb.training import PACKED, Tunit, load_run, pretrained, pretrained_models

torch.set_num_threads(1)


def tunit(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'tunit_nb.cli', *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_the_file_holds_tensors_and_plain_data_only():
    path = pretrained_models()['digits']
    assert path.stat().st_size < 10e6                                    # a few MB
    state = torch.load(path, map_location='cpu', weights_only=True)     # refuses anything that would run code
    assert state['format'] == PACKED
    assert set(state) == {'format', 'config', 'model', 'mean_styles', 'metrics', 'history'}
    assert {name.split('.')[0] for name in state['model']} == {'guiding_ema', 'generator_ema'}   # no D, E, G or queue
    assert state['mean_styles'].shape == (state['config']['k'], state['config']['sty_dim'])
    assert state['history'][-1]['iteration'] == state['config']['iters'] == state['metrics']['iteration']


def test_pretrained_is_load_run_of_the_shipped_file(tmp_path, monkeypatch):
    model = pretrained('digits', device='cpu')
    cfg, same = load_run(pretrained_models()['digits'], 'cpu')
    assert type(model) is type(same) is Tunit and model.cfg == cfg
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))
    (tmp_path / 'digits').mkdir()                                        # a folder named like the model
    monkeypatch.chdir(tmp_path)
    assert pretrained('digits', device='cpu').metrics == model.metrics   # the name still means the shipped model
    with pytest.raises(FileNotFoundError, match='not a run folder'): load_run('digits')   # a path comes first
    with pytest.raises(ValueError, match="no shipped model named 'faces'"): pretrained('faces')


def test_re_evaluated_it_scores_what_it_records(tmp_path):
    "The held-out clustering and translation accuracy, measured again by `tunit eval`, within 0.01 of the file's."
    result = tunit('eval', '--run', 'digits', '--out', tmp_path, '--no-fid', '--quiet', '--device', 'cpu')
    assert result.returncode == 0, result.stderr
    report, recorded = json.loads((tmp_path / 'report.json').read_text()), pretrained('digits').metrics
    for name in ('clustering_accuracy', 'translation_accuracy'):
        assert abs(report[name] - recorded[name]) <= 0.01, (name, report[name], recorded[name])
    assert report['clustering_accuracy'] > 0.85 and report['translation_accuracy'] > 0.85
    assert {'tsne.png', 'confusion.png', 'translations.png'} <= {p.name for p in tmp_path.iterdir()}


def test_translate_takes_it_by_name(tmp_path):
    from tunit_nb.data import Digits, save_images
    save_images(Digits('heldout', size=32).images[:2], tmp_path / 'sources', prefix='src')
    result = tunit('translate', '--run', 'digits', '--src', tmp_path / 'sources', '--domain', 0, '--out', tmp_path / 'out')
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['grid.png', 'src00000_domain0.png', 'src00001_domain0.png']
