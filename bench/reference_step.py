"""Benchmark: seconds per training iteration of the reference implementation (clovaai/tunit), on the CPU.

The reference's own code runs its own unsupervised GAN-phase iteration (`train/train_unsupervised.py`,
`trainGAN_UNSUP`): the guiding network's step, then D's step with R1, then G's and the guiding network's step,
with its networks at `--size` and its optimisers as its `main.py` builds them. It needs a clone of the reference:

    git clone https://github.com/clovaai/tunit ../tunit-reference
    python bench/reference_step.py --reference ../tunit-reference [--size 64] [--batch 8] [--steps 6]
    python bench/step.py --compare --modes eager reference --reference ../tunit-reference --rounds 3
    python bench/reference_step.py --reference ../tunit-reference --interleave eager   # one process, steps in turn

No reference code is part of this repository: this script imports it from --reference. The reference calls
`.cuda()` and `torch.cuda.synchronize()`; on a machine without CUDA both become no-ops here (tensors stay on the
CPU). Its IIC loss writes into expanded tensors, which current PyTorch refuses; tunit_nb's `iic_loss`, the same
loss on a (k, k) table, stands in for it. Nothing else of the reference's iteration is changed. Its images come
from scikit-learn's digits (as `bench/step.py`'s do), prepared before timing: the reference's data loading is not
timed (ours, in `bench/step.py`, is).
Ends with one line: s_per_iter=<median> peak_rss_mb=<peak resident memory of this process>
"""
import argparse, resource, statistics, sys, time
from pathlib import Path
from types import SimpleNamespace

import torch

from step import MODES, make_trainer   # bench/step.py, beside this script
from tunit_nb.data import Augment, Digits, to_signed
from tunit_nb.mi import iic_loss


def load_reference(path:Path):
    "Import the reference's modules from a clone at `path` (the folder that holds main.py, models/ and train/)."
    missing = [p for p in ('models/generator.py', 'models/discriminator.py', 'models/guidingNet.py',
                           'train/train_unsupervised.py', 'tools/ops.py') if not (path / p).exists()]
    if missing:
        raise SystemExit(f"--reference {path}: not a clone of https://github.com/clovaai/tunit (missing {', '.join(missing)}); "
                         f"clone it with `git clone https://github.com/clovaai/tunit {path}`")
    sys.path.insert(0, str(path))
    from models.generator import Generator
    from models.discriminator import Discriminator
    from models.guidingNet import GuidingNet
    import train.train_unsupervised as reference_train
    # The reference's calc_iic_loss writes into expanded tensors (p_i[p_i < EPS] = EPS), which current PyTorch refuses
    # in the backward pass ("more than one element of the written-to tensor refers to a single memory location");
    # tunit_nb's iic_loss is the same loss (the same clamping at 1e-10) on a (k, k) table: negligible time.
    reference_train.calc_iic_loss = iic_loss
    trainGAN_UNSUP = reference_train.trainGAN_UNSUP
    return Generator, Discriminator, GuidingNet, trainGAN_UNSUP


class TimedBatches:
    "Hands out the prepared batches in a loop, timing the reference's iterations between them (and `between()`, run before each)."
    def __init__(self, batches, between=None):
        self.batches, self.between, self.reference, self.ours, self.taken = batches, between, [], [], None
    def __iter__(self):
        while True:
            for batch in self.batches:
                if self.taken is not None: self.reference.append(time.perf_counter() - self.taken)  # its iteration ended
                if self.between is not None:
                    t0 = time.perf_counter(); self.between(); self.ours.append(time.perf_counter() - t0)
                self.taken = time.perf_counter()
                yield batch


def run(args):
    if args.threads: torch.set_num_threads(args.threads)
    if not torch.cuda.is_available():   # the reference moves everything with .cuda(): keep it on the CPU
        torch.Tensor.cuda = lambda self, *a, **k: self
        torch.nn.Module.cuda = lambda self, *a, **k: self
        torch.cuda.synchronize = lambda *a, **k: None
    Generator, Discriminator, GuidingNet, trainGAN_UNSUP = load_reference(Path(args.reference).expanduser().resolve())
    torch.manual_seed(0)
    k, sty_dim = 10, 128
    # the networks and optimisers of the reference's main.py (build_model), for one process
    C, C_EMA = (GuidingNet(args.size, {'cont': sty_dim, 'disc': k}) for _ in range(2))
    C_EMA.load_state_dict(C.state_dict())
    G, G_EMA = (Generator(args.size, sty_dim, use_sn=False) for _ in range(2))
    D = Discriminator(args.size, num_domains=k)
    networks = dict(C=C, C_EMA=C_EMA, G=G, G_EMA=G_EMA, D=D)
    opts = dict(C=torch.optim.Adam(C.parameters(), 1e-4, weight_decay=0.001),
                D=torch.optim.RMSprop(D.parameters(), 1e-4, weight_decay=0.0001),
                G=torch.optim.RMSprop(G.parameters(), 1e-4, weight_decay=0.0001))
    params = {n: sum(p.numel() for p in net.parameters()) / 1e6 for n, net in (('E', C), ('G', G), ('D', D))}
    print(f"reference size={args.size} batch={args.batch} threads={torch.get_num_threads()} "
          f"params(M): E={params['E']:.2f} G={params['G']:.2f} D={params['D']:.2f}", flush=True)
    # batches as its data loader yields them: ((x, augmented x), labels), images in [-1, 1]
    images, augment, rng = to_signed(Digits('train', size=args.size).images), Augment(), torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):
        x = images[torch.randint(len(images), (args.batch,), generator=rng)]
        batches.append(((x, augment(x, rng)), torch.zeros(args.batch, dtype=torch.long)))
    with torch.no_grad(): keys = C_EMA.moco(batches[0][0][1]).detach()
    queue = keys.repeat(1024 // len(keys) + 1, 1)[:1024]   # a full queue of 1,024 keys, as in its steady state
    ref_args = SimpleNamespace(iters=args.untimed + args.steps + 1, separated=0, ema_start=0, epochs=1,
                               distributed=False, gpu=None, log_step=10 ** 9, w_gp=10.0, w_rec=0.1, w_adv=1.0,
                               w_vec=0.01, sty_dim=sty_dim, output_k=k, batch_size=args.batch)
    trainer = make_trainer('paper', args.size, args.batch, args.interleave) if args.interleave else None
    data = TimedBatches(batches, between=trainer.step if trainer else None)
    trainGAN_UNSUP(data, networks, opts, epoch=1, args=ref_args, additional=dict(logger=None, queue=queue))
    times = data.reference[args.untimed:]
    for i, t in enumerate(times):   # with --interleave, ours ran just before each of the reference's iterations
        print(f"  step {i + 1}: {t:.3f} s" + (f"  ours ({args.interleave}) {data.ours[args.untimed + i]:.3f} s"
                                             if trainer else ''), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if trainer:
        ours = data.ours[args.untimed:len(times) + args.untimed]
        trainer.flush()   # and check that every loss stayed finite
        print(f"ours_s_per_iter={statistics.median(ours):.3f} ({args.interleave}) reference_s_per_iter="
              f"{statistics.median(times):.3f} speedup={statistics.median(times) / statistics.median(ours):.2f} "
              f"(median of step pairs {statistics.median(r / o for r, o in zip(times, ours)):.2f})")
    print(f"s_per_iter={statistics.median(times):.3f} peak_rss_mb={peak:.0f}" + (' (both in this process)' if trainer else ''))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reference', required=True, help='a clone of https://github.com/clovaai/tunit')
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--steps', type=int, default=6, help='timed steps')
    parser.add_argument('--untimed', type=int, default=2, help='steps before timing starts')
    parser.add_argument('--threads', type=int, default=None, help="torch threads (default: PyTorch's choice)")
    parser.add_argument('--interleave', default=None, choices=list(MODES),
                        help="also run tunit_nb's step (a bench/step.py mode, e.g. eager) in this process, one step before "
                             "each of the reference's: the two see the same machine load (ours sets keep_memory's "
                             "malloc options for the process, which the reference then enjoys too)")
    run(parser.parse_args())


if __name__ == '__main__':
    main()
