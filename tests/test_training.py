"Training runs end to end on the CPU: exact resume, checkpoint fallback, non-finite losses, image folders."
import json, os, warnings

import pytest
import torch

from tunit_nb.data import Digits, save_images
from tunit_nb.training import (Checkpoints, CheckpointWarning, NonFiniteLossError, TrainConfig, Trainer,
                               load_checkpoint, load_run, train, training_images)

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


def test_non_finite_loss_stops_with_the_loss_and_iteration_named():
    cfg = TrainConfig.preset('tiny', warmup_iters=2, iters=6)
    trainer = Trainer(cfg, Digits('train', size=32))
    for _ in range(3): trainer.step()
    trainer.flush()
    with torch.no_grad():
        for p in trainer.model.discriminator.parameters(): p.fill_(float('nan'))
    trainer.step()
    with pytest.raises(NonFiniteLossError, match=r"'d_\w+' became nan at iteration 4"):
        trainer.flush()
    with pytest.raises(NonFiniteLossError):                                 # and no checkpoint can be taken of it
        trainer.step(); trainer.state_dict()


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


def test_batch_larger_than_data_is_refused_before_training(tmp_path):
    save_images(Digits('all', size=32).images[:20], tmp_path / 'data')
    with pytest.raises(ValueError, match='fewer than one batch of 32'):
        train(TrainConfig.preset('tiny', data=str(tmp_path / 'data')), tmp_path / 'run', progress=False)


@pytest.mark.parametrize('field,value,message', [
    ('size', 48, 'power of two'), ('size', 16, '>= 32'), ('k', 1, 'at least 2'), ('batch_size', 1, 'at least 2'),
    ('heldout', 1.0, 'heldout'), ('backbone', 'resnet', 'backbone'), ('device', 'tpu', 'device')])
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        cfg = TrainConfig.preset('tiny', **{field: value})
        Trainer(cfg, Digits('train', size=32))


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


def test_compile_flag_trains_without_graph_breaks(tmp_path, monkeypatch):
    "`compile=True` runs both phases without graph breaks; its first step's losses are eager's, the rest finite."
    # compiled: E, G, D's passes without R1's double backward, and G's and D's RMSprop steps
    from torch._dynamo.utils import counters
    monkeypatch.setenv('TORCHINDUCTOR_CACHE_DIR', str(tmp_path / 'inductor'))   # this test's kernels, no stale ones
    counters.clear()
    logs = {}
    for compiled in (False, True):
        cfg = TrainConfig.preset('tiny', compile=compiled, warmup_iters=2, iters=4)
        trainer = Trainer(cfg, Digits('train', size=cfg.size))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            for _ in range(4): trainer.step(); trainer.flush()
        logs[compiled] = trainer.history
        for opt in (trainer.opt_g, trainer.opt_d):   # the steps kept RMSprop's own state, which checkpoints save
            assert [int(opt.state[p]['step']) for g in opt.param_groups for p in g['params']] == [2] * len(opt.state)
        assert not [str(w.message) for w in caught if 'dynamo' in w.filename or 'inductor' in w.filename]
    # E and G compile whole; the only breaks are those torch.optim puts around every compiled step, by design
    breaks = {reason for reason in counters['graph_break'] if 'User-inserted graph break' not in reason}
    assert not breaks, breaks
    assert [r['phase'] for r in logs[True]] == ['warmup', 'warmup', 'gan', 'gan']
    # The first step: the same weights and batch, other kernels; its losses (means of a few hundred float32 terms
    # of size ~10) agree far within 1e-4. Later steps are not compared: an untrained E's domain logits are nearly
    # equal, so a last-bit difference can flip an argmax, hence a pseudo-label and the head of D that judges it.
    for name, value in logs[False][0].items():
        if isinstance(value, float) and name != 'seconds':
            assert logs[True][0][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    assert all(torch.isfinite(torch.tensor(v)) for r in logs[True] for v in r.values() if isinstance(v, float))


def test_compiled_networks_and_optimiser_step_compute_eagers_function(tmp_path, monkeypatch):
    "In float64, where the same sums agree to some 1e-15, compiled E (forward and backward, training mode), G, D and RMSprop's step are the eager ones."
    import copy
    monkeypatch.setenv('TORCHINDUCTOR_CACHE_DIR', str(tmp_path / 'inductor'))
    from tunit_nb.training import Tunit
    torch.manual_seed(0)
    cfg = TrainConfig.preset('tiny')
    model = Tunit(cfg).double()
    x = (Digits('train', size=cfg.size).images[:8].double() / 127.5 - 1).requires_grad_()
    style = torch.randn(8, cfg.sty_dim, dtype=torch.float64)
    def close(a, b): torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    every_head = lambda n: torch.cat([o.flatten() for o in n(x, all_heads=True).values() if o is not None])
    for net, run in ((model.guiding, every_head), (model.generator, lambda n: n(x, style)),
                     (model.discriminator, lambda n: n.logits(x))):
        eager, compiled = copy.deepcopy(net), torch.compile(copy.deepcopy(net))
        out_eager, out_compiled = run(eager), run(compiled)
        close(out_compiled, out_eager)
        for a, b in zip(torch.autograd.grad(out_compiled.square().sum(), [x, *compiled.parameters()]),
                        torch.autograd.grad(out_eager.square().sum(), [x, *eager.parameters()])): close(a, b)
    D_eager, D_compiled = copy.deepcopy(model.discriminator), copy.deepcopy(model.discriminator)
    opts = [torch.optim.RMSprop(D.parameters(), lr=1e-3, weight_decay=1e-4) for D in (D_eager, D_compiled)]
    steps = (opts[0].step, torch.compile(opts[1].step))
    for _ in range(2):
        for D, opt, step in zip((D_eager, D_compiled), opts, steps):
            opt.zero_grad(); D.logits(x.detach()).square().sum().backward(); step()
    for a, b in zip(D_compiled.parameters(), D_eager.parameters()): close(a, b)


def test_keep_freed_memory_stops_page_faults_of_large_blocks():
    "glibc hands a freed 64 MB gradient back to the OS, and the next one is faulted in page by page; kept, it is reused."
    resource = pytest.importorskip('resource')
    from tunit_nb.training import keep_freed_memory
    layer, h = torch.nn.Linear(16384, 1024), torch.randn(8, 16384)   # D's last 4x4 convolution at 64 px, as a matrix
    def faults(keep):
        if not keep_freed_memory(keep): pytest.skip('no glibc malloc here')
        counts = []
        for _ in range(6):                      # the fewest after the first: a freed block may be split once
            layer.weight.grad = None
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            layer(h).sum().backward()
            counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return min(counts[1:])
    try: default, kept = faults(False), faults(True)
    finally: keep_freed_memory(True)
    assert kept < 500 and kept < default, (default, kept)


def _resident_mb():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def test_train_gives_kept_memory_back_when_it_ends(tmp_path):
    "keep_memory holds freed blocks for the next step; once `train` returns, malloc's defaults are back and what it held leaves the process."
    from tunit_nb.training import keep_freed_memory
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
