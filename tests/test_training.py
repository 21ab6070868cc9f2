"Run folders on the CPU: exact resume, checkpoint fallback, folder rules, image folders, memory handed back; the shipped model."
import json, os, subprocess, sys, warnings

import pytest
import torch

from tunit_nb.data import Digits, save_images
from tunit_nb.config import TrainConfig
from tunit_nb.runtime import keep_freed_memory
from tunit_nb.model import TunitModel
from tunit_nb.training import (PACKED, Checkpoints, CheckpointWarning, load_checkpoint, load_run, pretrained,
                               pretrained_models, train)

torch.set_num_threads(1)


def _weights(run):
    state, _ = Checkpoints(run / 'checkpoints').load()
    return state


def _assert_same_state(a, b):
    assert a['iteration'] == b['iteration']
    for name in a['model']:
        assert torch.equal(a['model'][name], b['model'][name]), name
    for opt in ('opt_e', 'opt_g', 'opt_d'):
        for sa, sb in zip(a[opt]['state'].values(), b[opt]['state'].values()):
            for key in sa: assert torch.equal(torch.as_tensor(sa[key]), torch.as_tensor(sb[key])), (opt, key)
    assert a['order'] == b['order']


def test_resume_is_exact_bit_for_bit(tmp_path):
    "2N steps straight equal N steps, a resume from the checkpoint, and N more (CPU: bit for bit), across both phases."
    cfg = TrainConfig.preset('tiny', warmup_iters=20, iters=40, checkpoint_every=10)
    train(cfg, tmp_path / 'straight', progress=False, evaluate=False)
    train(TrainConfig.preset('tiny', warmup_iters=20, iters=15, checkpoint_every=10), tmp_path / 'split',
          progress=False, evaluate=False)                                   # stops inside the warm-up
    train(cfg, tmp_path / 'split', resume=True, progress=False, evaluate=False)
    _assert_same_state(_weights(tmp_path / 'straight'), _weights(tmp_path / 'split'))
    logs = [[json.loads(l)['iteration'] for l in (tmp_path / run / 'log.jsonl').read_text().splitlines()]
            for run in ('straight', 'split')]
    assert logs[0] == logs[1] == list(range(5, 41, 5))                    # one record per log_every, none twice


def test_restarts_resume_exactly(tmp_path):
    "Checkpoints inside the second and the third of E's trial runs (the best trial so far kept in them) resume bit for bit."
    kw = dict(warmup_iters=20, restarts=3, restart_iters=4, checkpoint_every=6)
    train(TrainConfig.preset('tiny', iters=24, **kw), tmp_path / 'straight', progress=False, evaluate=False)
    train(TrainConfig.preset('tiny', iters=6, **kw), tmp_path / 'split', progress=False, evaluate=False)
    mid = _weights(tmp_path / 'split')                                       # iteration 6: inside the second trial
    assert mid['iteration'] == 6 and len(mid['restart_losses']) == 1 and mid['best_start'] is not None
    for iters in (10, 24):                                                   # 10: inside the third trial
        train(TrainConfig.preset('tiny', iters=iters, **kw), tmp_path / 'split', resume=True, progress=False,
              evaluate=False)
    _assert_same_state(_weights(tmp_path / 'straight'), _weights(tmp_path / 'split'))
    end = _weights(tmp_path / 'straight')
    assert len(end['restart_losses']) == 3 and end['best_start'] is None    # the choice made, the copy dropped


def test_resume_from_an_image_folder_is_exact(tmp_path):
    "The DataLoader path (image files, worker processes) resumes the data order exactly too."
    digits = Digits('all', size=32)
    save_images(digits.images[:120], tmp_path / 'data')
    kw = dict(data=str(tmp_path / 'data'), warmup_iters=6, checkpoint_every=4, workers=1)
    train(TrainConfig.preset('tiny', iters=12, **kw), tmp_path / 'a', progress=False, evaluate=False)
    train(TrainConfig.preset('tiny', iters=8, **kw), tmp_path / 'b', progress=False, evaluate=False)
    train(TrainConfig.preset('tiny', iters=12, **kw), tmp_path / 'b', resume=True, progress=False, evaluate=False)
    _assert_same_state(_weights(tmp_path / 'a'), _weights(tmp_path / 'b'))


def test_unreadable_latest_checkpoint_falls_back_to_previous(tmp_path):
    cfg = TrainConfig.preset('tiny', warmup_iters=10, iters=20, checkpoint_every=10)
    train(cfg, tmp_path / 'run', progress=False, evaluate=False)
    newest = tmp_path / 'run' / 'checkpoints' / 'iter-0000020.pt'
    newest.write_bytes(newest.read_bytes()[:1000])                          # truncated, as by a full disk
    with pytest.warns(CheckpointWarning, match='iter-0000020.pt'):
        train(TrainConfig.preset('tiny', warmup_iters=10, iters=20, checkpoint_every=10), tmp_path / 'run',
              resume=True, progress=False, evaluate=False)
    assert load_checkpoint(newest)['iteration'] == 20                      # retrained from 10 and rewritten


def test_run_folder_rules(tmp_path):
    cfg = TrainConfig.preset('tiny', warmup_iters=4, iters=6, checkpoint_every=3)
    train(cfg, tmp_path / 'run', progress=False, evaluate=False)
    with pytest.raises(FileExistsError, match='--resume'): train(cfg, tmp_path / 'run', progress=False)
    with pytest.raises(ValueError, match='lr_g'):
        train(TrainConfig.preset('tiny', warmup_iters=4, iters=6, lr_g=0.5), tmp_path / 'run', resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match='nothing to resume'):
        train(cfg, tmp_path / 'other', resume=True, progress=False)
    train(cfg, tmp_path / 'run', force=True, progress=False, evaluate=False)  # overwrite
    assert sorted(p.name for p in (tmp_path / 'run' / 'checkpoints').iterdir()) == ['iter-0000003.pt', 'iter-0000006.pt', 'latest']
    with pytest.raises(FileNotFoundError, match='not a run folder'): load_run(tmp_path / 'other')


def test_evaluation_every_n_steps_appends_to_evals_jsonl(tmp_path):
    cfg = TrainConfig.preset('tiny', warmup_iters=4, iters=12, eval_every=5, checkpoint_every=6)
    metrics = train(cfg, tmp_path / 'run', progress=False)
    evals = [json.loads(l) for l in (tmp_path / 'run' / 'evals.jsonl').read_text().splitlines()]
    assert [e['iteration'] for e in evals] == [5, 10]
    assert set(evals[0]) >= {'clustering_accuracy', 'translation_accuracy', 'cluster_sizes'}
    assert set(metrics) <= set(json.loads((tmp_path / 'run' / 'metrics.json').read_text()))


def test_losses_go_to_tensorboard_when_it_is_installed(tmp_path, monkeypatch):
    import tunit_nb.training as training
    scalars = []
    class Writer:
        def add_scalar(self, name, value, step): scalars.append((name, step))
        def close(self): scalars.append('closed')
    monkeypatch.setattr(training, '_tensorboard', lambda out: Writer())
    train(TrainConfig.preset('tiny', warmup_iters=4, iters=10), tmp_path / 'run', progress=False, evaluate=False)
    assert ('loss/g_adv', 10) in scalars and ('loss/iic', 5) in scalars and scalars[-1] == 'closed'


def _resident_mb():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def test_train_gives_kept_memory_back_when_it_ends(tmp_path):
    "keep_memory holds freed blocks for the next step; once `train` returns, malloc's defaults are back and what it held leaves the process."
    if not os.path.exists('/proc/self/statm') or not keep_freed_memory(): pytest.skip('needs glibc and /proc (Linux)')
    def freed_mb():   # resident MB that freeing a written 256 MB block gives back
        block = torch.ones(2 ** 26)
        with_block = _resident_mb(); del block
        return with_block - _resident_mb()
    kept = freed_mb()                                 # the trainer's setting: the pages stay in malloc's heap
    held = _resident_mb()
    keep_freed_memory(False)                          # glibc's defaults, and the heap's free pages go back
    assert kept < 50 and _resident_mb() < held - 200, (kept, held, _resident_mb())
    assert freed_mb() > 200                           # the defaults: a large block is unmapped when freed
    keep_freed_memory(True)
    train(TrainConfig.preset('tiny', warmup_iters=2, iters=3), tmp_path / 'run', progress=False, evaluate=False)
    assert freed_mb() > 200                           # the trainer set keep_memory; train set the defaults back


# ---- the model that ships with the package

def tunit(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'tunit_nb.cli', *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.mark.parametrize('name', ['digits', 'styled-digits'])
def test_the_file_holds_tensors_and_plain_data_only(name):
    path = pretrained_models()[name]
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
    assert type(model) is type(same) is TunitModel and model.cfg == cfg
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))
    (tmp_path / 'digits').mkdir()                                        # a folder named like the model
    monkeypatch.chdir(tmp_path)
    assert pretrained('digits', device='cpu').metrics == model.metrics   # the name still means the shipped model
    with pytest.raises(FileNotFoundError, match='not a run folder'): load_run('digits')   # a path comes first
    with pytest.raises(ValueError, match="no shipped model named 'faces'"): pretrained('faces')


SCORES = {'digits': ('clustering_accuracy', 'translation_accuracy', 'min_domain_accuracy', 'diversity'),
          'styled-digits': ('clustering_accuracy', 'translation_accuracy', 'min_domain_accuracy', 'content_accuracy',
                            'diversity')}

@pytest.mark.parametrize('name', list(SCORES))
def test_re_evaluated_it_scores_what_it_records(tmp_path, name):
    "Each shipped model's held-out figures, measured again by `tunit eval`, within 0.01 of the file's."
    result = tunit('eval', '--run', name, '--out', tmp_path, '--no-fid', '--quiet', '--device', 'cpu')
    assert result.returncode == 0, result.stderr
    report, recorded = json.loads((tmp_path / 'report.json').read_text()), pretrained(name).metrics
    assert {'clustering_accuracy', 'translation_accuracy'} <= set(recorded)
    for score in (s for s in SCORES[name] if s in recorded):   # a file packed before a metric existed lacks it
        assert abs(report[score] - recorded[score]) <= 0.01, (score, report[score], recorded[score])
    assert report['clustering_accuracy'] > 0.85 and report['translation_accuracy'] > 0.85 and report['diversity'] > 0.3
    if name == 'styled-digits': assert report['content_accuracy'] > 0.85
    assert {'tsne.png', 'confusion.png', 'translations.png'} <= {p.name for p in tmp_path.iterdir()}


def test_evaluate_run_caps_the_translations_of_mfid():
    "With max_fakes, mFID translates at most that many sources per domain; the real images all count."
    from tunit_nb.training import evaluate_run, training_images
    seen = []
    def extractor(x):                                   # (b, 3, h, w) -> (b, 2): counts what it is shown
        seen.append(len(x)); return x.mean((2, 3))[:, :2]
    cfg, model = load_run(pretrained_models()['digits'], 'cpu')
    report = evaluate_run(model, cfg, extractor=extractor, max_fakes=7)
    n_real = len(training_images(cfg)) + report['n_images']
    assert sum(seen) == n_real + 7 * len(report['fid_per_domain'])   # every held-out digit is a source of 9 domains
    assert report['mfid'] >= 0 and len(report['fid_per_domain']) == cfg.k


def test_translate_takes_it_by_name(tmp_path):
    from tunit_nb.data import Digits, save_images
    save_images(Digits('heldout', size=32).images[:2], tmp_path / 'sources', prefix='src')
    result = tunit('translate', '--run', 'digits', '--src', tmp_path / 'sources', '--domain', 0, '--out', tmp_path / 'out')
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['grid.png', 'src00000_domain0.png', 'src00001_domain0.png']
