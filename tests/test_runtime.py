"DDP on the CPU: two processes (gloo) train the tiny preset; weights stay identical, the queue is shared, rank 0's run resumes alone."
import os, socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tunit_nb.data import Digits
from tunit_nb.config import TrainConfig
from tunit_nb.trainer import Trainer
from tunit_nb.training import Checkpoints, train

CFG = dict(warmup_iters=4, iters=8, checkpoint_every=4, queue_size=1024, device='cpu')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _worker(rank, world, port, out, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        cfg = TrainConfig.preset('tiny', **CFG)
        trainer = Trainer(cfg, Digits('train', size=32))
        assert (trainer.rank, trainer.world) == (rank, world)
        first = trainer.order.take(cfg.batch_at(0)).tolist(); trainer.order.position = 0
        for _ in range(cfg.iters): trainer.step()
        flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        state = trainer.state_dict()                                    # collective: gathers every rank's generator
        results[rank] = dict(same=all(torch.equal(gathered[0], g) for g in gathered), first=first,
                             queue=len(trainer.model.queue), rngs=len(state['rng']))
        train(cfg, out, progress=False, evaluate=False)                 # the run folder: rank 0 writes it
    finally:
        dist.destroy_process_group()


def test_two_processes_train_identically_share_the_queue_and_resume_alone(tmp_path):
    out = str(tmp_path / 'run')
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), out, results), nprocs=2, join=True)
        results = dict(results)
    assert results[0]['same'] and results[1]['same']                    # DDP kept the weights identical
    assert not set(results[0]['first']) & set(results[1]['first'])      # each process reads its own share
    # the queue holds keys from both processes: 4 warm-up steps of 32 and 4 GAN steps of 8 images, times 2
    assert results[0]['queue'] == results[1]['queue'] == 2 * (4 * 32 + 4 * 8)
    assert results[0]['rngs'] == 2                                      # one augmentation stream per process
    state = Checkpoints(tmp_path / 'run' / 'checkpoints').load()[0]
    assert state['iteration'] == 8 and int(state['model']['queue.filled']) == 2 * (4 * 32 + 4 * 8)
    # rank 0's checkpoint resumes in a single process
    train(TrainConfig.preset('tiny', **{**CFG, 'iters': 10}), out, resume=True, progress=False, evaluate=False)
    assert Checkpoints(tmp_path / 'run' / 'checkpoints').load()[0]['iteration'] == 10


def test_torchrun_launches_the_command_line_on_two_cpu_processes(tmp_path):
    "The documented launch: torchrun -m tunit_nb.cli train ...; rank 0 alone writes and prints."
    import subprocess, sys
    from pathlib import Path
    torchrun = Path(sys.executable).parent / 'torchrun'
    result = subprocess.run([str(torchrun), '--nproc_per_node=2', '--master_port', str(_free_port()), '-m', 'tunit_nb.cli',
                             'train', '--preset', 'tiny', '--warmup-iters', '3', '--iters', '6', '--checkpoint-every', '3',
                             '--device', 'cpu', '--out', str(tmp_path / 'run'), '--quiet', '--no-eval'],
                            capture_output=True, text=True, timeout=300, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count('run folder:') == 1 and '2 processes' in result.stdout
    state = Checkpoints(tmp_path / 'run' / 'checkpoints').load()[0]
    assert state['iteration'] == 6 and len(state['rng']) == 2
