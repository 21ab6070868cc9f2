"The trainer on the CPU: a short warm-up beats chance, collapse and non-finite losses are caught, torch.compile changes nothing."
import warnings

import pytest
import torch

from tunit_nb.clustering import ClusterCollapseWarning, predict
from tunit_nb.config import TrainConfig
from tunit_nb.data import Digits, save_images
from tunit_nb.evaluation import cluster_metrics
from tunit_nb.trainer import NonFiniteLossError, Trainer, train_guiding
from tunit_nb.training import train

torch.set_num_threads(1)


def test_short_warmup_beats_chance():
    "400 steps of the digits recipe (under a minute) already cluster held-out digits far better than chance (0.1-0.15)."
    torch.set_num_threads(1)
    cfg = TrainConfig.preset('digits', seed=0, restarts=1)
    run = train_guiding(cfg, Digits('train', size=cfg.size), iters=400, check_every=0)
    held = Digits('heldout', size=cfg.size)
    pseudo = predict(run.model.guiding, held.images.float() / 127.5 - 1)
    m = cluster_metrics(held.targets, pseudo)
    assert m['clustering_accuracy'] > 0.4 and m['nmi'] > 0.4, m
    assert len(run.head_losses) == cfg.n_heads and min(run.head_losses) < -0.5


def test_collapse_warning_during_training():
    "A learning rate far too high collapses the clustering; the loop says so."
    cfg = TrainConfig.preset('tiny', lr=10.)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        train_guiding(cfg, Digits('train', size=cfg.size), iters=20, check_every=10)
    assert any(w.category is ClusterCollapseWarning for w in caught)


def test_no_checkpoint_is_taken_of_a_non_finite_loss():
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


def test_batch_larger_than_data_is_refused_before_training(tmp_path):
    save_images(Digits('all', size=32).images[:20], tmp_path / 'data')
    with pytest.raises(ValueError, match='fewer than one batch of 32'):
        train(TrainConfig.preset('tiny', data=str(tmp_path / 'data')), tmp_path / 'run', progress=False)


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
    from tunit_nb.model import TunitModel as Tunit
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
