"Semi-supervised runs: labels from class sub-folders and CSVs, the labelled steps' losses by hand, D's true domains, resume, DDP and the CLI."
import copy, json, os, socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from tunit_nb.cli import main
from tunit_nb.config import TrainConfig
from tunit_nb.data import Digits, save_images, to_signed
from tunit_nb.labels import domain_labels, labelled_step, read_label_csv
from tunit_nb.trainer import Trainer
from tunit_nb.training import Checkpoints, load_run, pack_run, train

DIGITS = Digits('train', size=32)
NAMES = ['zero', 'one', 'two']


def tiny(**changes):
    return TrainConfig.preset('tiny', **{'device': 'cpu', **changes})


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    "90 digits 0-2 as PNGs in class sub-folders named zero/one/two."
    root = tmp_path_factory.mktemp('named') / 'images'
    keep = (torch.as_tensor(DIGITS.targets) < 3).nonzero().flatten()[:90]
    save_images(DIGITS.images[keep], root, targets=torch.as_tensor(DIGITS.targets)[keep], classes=NAMES)
    return root


def test_labels_per_class_from_sub_folders_and_a_csv(folder, tmp_path):
    from tunit_nb.training import training_images
    cfg = tiny(data=str(folder), k=3, labels_per_class=2)
    data = training_images(cfg, tmp_path / 'cache')
    labels, names = domain_labels(cfg, data)
    assert names == sorted(NAMES) and torch.bincount(labels[labels >= 0]).tolist() == [2, 2, 2]
    assert torch.equal(labels[labels >= 0], data.targets[labels >= 0])                     # the true classes
    # the same folder labelled by a CSV, paths relative to it: names are the CSV's labels
    rows = [f'{p.relative_to(folder)},{data.classes[int(t)]}' for p, t in list(zip(data.files, data.targets))[:9]]
    (tmp_path / 'l.csv').write_text('\n'.join(rows))
    labels, names = domain_labels(tiny(data=str(folder), k=3, labels=str(tmp_path / 'l.csv')), data)
    assert (labels[:9] >= 0).all() and (labels[9:] == -1).all()
    assert [names[i] for i in labels[:9]] == [data.classes[int(t)] for t in data.targets[:9]]
    assert domain_labels(tiny(data=str(folder), k=5, labels=str(tmp_path / 'l.csv')), data)[1] == sorted(set(names))
    # absolute paths work too; the header is optional
    (tmp_path / 'abs.csv').write_text('path,label\n' + f'{data.files[0].resolve()},one\n{data.files[1]},two\n')
    labels, names = read_label_csv(tmp_path / 'abs.csv', data.files, folder)
    assert names == ['one', 'two'] and labels[:2].tolist() == [0, 1]


def test_bad_labels_are_refused_in_one_line(folder, tmp_path):
    from tunit_nb.training import training_images
    data = training_images(tiny(data=str(folder)), tmp_path / 'cache')
    (tmp_path / 'many.csv').write_text('\n'.join(f'{p.relative_to(folder)},c{i}' for i, p in enumerate(data.files[:4])))
    with pytest.raises(ValueError, match='the labels name 4 domains but K is 3: raise --k to at least 4'):
        domain_labels(tiny(data=str(folder), k=3, labels=str(tmp_path / 'many.csv')), data)
    (tmp_path / 'one.csv').write_text(f'{data.files[0].relative_to(folder)},zero\n')
    with pytest.raises(ValueError, match='at least two labelled'):
        domain_labels(tiny(data=str(folder), k=3, labels=str(tmp_path / 'one.csv')), data)
    with pytest.raises(ValueError, match="class 'one' has"):
        domain_labels(tiny(data=str(folder), k=3, labels_per_class=1000), data)


def _identity_trainer(**changes):
    "A trainer whose x+ and x' are x itself (no augmentation), so that E's loss can be recomputed by hand."
    cfg = tiny(strength=0., augment_x=0., labels_per_class=3, semi_share=0.5, repeats=2, n_heads=2, k_over=0, **changes)
    return Trainer(cfg, DIGITS)


def test_a_labelled_warmup_step_is_the_cross_entropy_and_contrastive_loss_by_hand():
    trainer = _identity_trainer()
    trainer.iteration = 1                                    # share 0.5: step 1 is labelled
    x = trainer.next_batch(); y = trainer.batch_labels
    assert y is not None and len(x) == 30 and (y >= 0).all()  # the 30 labelled images (3 of each digit)
    E, ema, queue = (copy.deepcopy(n) for n in (trainer.model.guiding, trainer.model.guiding_ema, trainer.model.queue))
    parts = trainer.warmup_step(x, y)
    heads = E(torch.cat([x, x, x]), all_heads=True)          # x, then two views that are x itself
    logits, b = heads['domain'], len(x)
    ce = sum(F.cross_entropy(logits[h, :b], y) + F.cross_entropy(logits[h, b:], y.repeat(2)) for h in range(2)) / 2
    keys = ema(x)[1]
    from tunit_nb.contrastive import contrastive_loss
    cfg = trainer.cfg
    contrastive = contrastive_loss(heads['style'][:b], keys, queue, cfg.tau, cfg.normalize)
    assert torch.allclose(parts['ce'], ce, atol=1e-5) and torch.allclose(parts['contrastive'], contrastive, atol=1e-5)
    assert torch.allclose(parts['total'], cfg.w_contrastive * contrastive + cfg.w_ce * ce, atol=1e-4)
    assert 'iic' not in parts and 'balance' not in parts
    # an unlabelled step: IIC, no cross-entropy; its batches come from the unlabelled images alone
    trainer.iteration = 2
    x = trainer.next_batch()
    assert not set(trainer.pool.tolist()) & set(trainer.pool_l.tolist()) and len(trainer.pool) == len(DIGITS) - 30
    assert trainer.batch_labels is None and 'ce' not in trainer.warmup_step(x)


def test_a_labelled_gan_step_gives_d_and_g_the_true_domains():
    trainer = _identity_trainer(warmup_iters=0, iters=4)
    seen = []
    update = trainer.d_update
    trainer.d_update = lambda x_ref, y_ref, fake: (seen.append(y_ref.clone()), update(x_ref, y_ref, fake))[1]
    trainer.start_gan()
    trainer.iteration = 1
    x = trainer.next_batch(); y = trainer.batch_labels
    parts = trainer.gan_step(x, y)
    assert sorted(seen[0].tolist()) == sorted(y.tolist())            # the references' domains: their labels
    assert parts['ce'] > 0 and 'g_adv' in parts


def test_labelled_steps_follow_the_schedule_and_the_run_resumes_exactly(tmp_path):
    cfg = tiny(labels_per_class=2, semi_share=0.25, warmup_iters=8, iters=14, n_heads=2, restarts=2, restart_iters=4,
               checkpoint_every=7)
    trainer, kinds = Trainer(cfg, DIGITS), []
    for _ in range(9):    # the second trial ends, and the GAN phase starts, at the ninth step
        trainer.step(); kinds.append(trainer.batch_labels is not None)
    assert kinds == [labelled_step(i, 0.25) for i in range(9)] == [False, False, False, True] * 2 + [False]
    assert len(trainer.restart_agreement) == 2                          # the trials were scored on the labels too
    full = train(cfg, tmp_path / 'full', progress=False, evaluate=False)
    train(tiny(**{**cfg.__dict__, 'iters': 7}), tmp_path / 'half', progress=False, evaluate=False)
    train(cfg, tmp_path / 'half', resume=True, progress=False, evaluate=False)
    a, b = (Checkpoints(tmp_path / n / 'checkpoints').load()[0]['model'] for n in ('full', 'half'))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert Checkpoints(tmp_path / 'half' / 'checkpoints').load()[0]['names'] == [str(d) for d in range(10)]


def test_the_t_sne_legend_names_the_domains():
    import matplotlib; matplotlib.use('Agg')
    from tunit_nb.evaluation import plot_tsne
    codes, domains = torch.randn(30, 4), torch.arange(30) % 3
    fig = plot_tsne(codes, domains, domains, names=['cat', 'dog'])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ['0 → 0: cat', '1 → 1: dog', '2 → 2']


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _worker(rank, world, port, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        trainer = Trainer(tiny(labels_per_class=4, semi_share=0.5, warmup_iters=3, iters=6), DIGITS)
        batches = []
        for _ in range(6):
            trainer.step()
            if trainer.batch_labels is not None: batches.append(trainer.batch_labels.tolist())
        flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        results[rank] = dict(same=all(torch.equal(gathered[0], g) for g in gathered), batches=batches,
                             shard=trainer.pool_l[trainer.order_l.shard()].tolist())
    finally:
        dist.destroy_process_group()


def test_two_processes_share_the_labelled_batches():
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), results), nprocs=2, join=True)
        results = dict(results)
    assert results[0]['same'] and results[1]['same']
    assert not set(results[0]['shard']) & set(results[1]['shard'])      # each process its own labelled images
    # 40 labelled images, 20 per process: the warm-up's labelled batch takes all 20, the GAN's batches of 8 fewer
    assert [len(b) for b in results[0]['batches']] == [len(b) for b in results[1]['batches']] == [20, 8, 8]


def test_the_command_line_trains_with_labels_and_translates_by_name(folder, tmp_path, capsys):
    (tmp_path / 'l.csv').write_text('\n'.join(f'{n}/{p.name},{n}' for n in NAMES for p in sorted((folder / n).iterdir())[:3]))
    run = tmp_path / 'run'
    assert main(['train', '--preset', 'tiny', '--data', str(folder), '--k', '4', '--labels', str(tmp_path / 'l.csv'),
                 '--warmup-iters', '4', '--iters', '6', '--out', str(run), '--quiet']) == 0
    metrics = json.loads((run / 'metrics.json').read_text())
    assert metrics['domain_names'] == sorted(NAMES) and 0 <= metrics['named_accuracy'] <= 1
    assert 'named_accuracy=' in capsys.readouterr().out
    src = sorted((folder / 'zero').iterdir())[0]
    assert main(['translate', '--run', str(run), '--src', str(src), '--domain', 'two', '--out', str(tmp_path / 't')]) == 0
    assert (tmp_path / 't' / f'{src.stem}_domaintwo.png').is_file()
    (tmp_path / 't' / f'{src.stem}_domaintwo.png').unlink()
    assert main(['translate', '--run', str(run), '--src', str(src), '--domain', '1', '--out', str(tmp_path / 't')]) == 0
    assert (tmp_path / 't' / f'{src.stem}_domaintwo.png').is_file()                # the number of the same domain
    assert main(['translate', '--run', str(run), '--src', str(src), '--domain', 'cat', '--out', str(tmp_path / 't')]) == 2
    assert "named 'one', 'two', 'zero'" in capsys.readouterr().err
    packed = pack_run(run, tmp_path / 'm.pt')                                         # the names travel with the model
    assert load_run(packed, 'cpu')[1].names == sorted(NAMES)
    # both label sources on the command line, and bad ones refused in one line
    assert main(['train', '--preset', 'tiny', '--data', 'digits', '--labels-per-class', '1', '--warmup-iters', '2',
                 '--iters', '2', '--out', str(tmp_path / 'd'), '--quiet', '--no-eval']) == 0
    for bad, says in ((['--labels', str(tmp_path / 'nope.csv')], 'does not exist'),
                      (['--labels-per-class', '100'], "class 'one' has"),
                      (['--labels-per-class', '2', '--label-fraction', '0.1'], 'give only one of them')):
        assert main(['train', '--preset', 'tiny', '--data', str(folder), '--k', '3', *bad, '--warmup-iters', '1',
                     '--iters', '2', '--out', str(tmp_path / 'bad'), '--force', '--quiet']) == 2
        err = capsys.readouterr().err
        assert says in err and err.count('\n') == 1, err
        assert not (tmp_path / 'bad' / 'config.json').exists()                     # refused before the run began
