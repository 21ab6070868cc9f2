"""Benchmark: seconds per full TUNIT training iteration (GAN phase: D step, then G + E step) on the CPU.

Uses real images (scikit-learn's digits rendered at --size), the preset's networks, and skips the warm-up
phase (E alone) so that every timed step is a full GAN step. A few untimed steps come first.
Ends with one line: s_per_iter=<median> peak_rss_mb=<peak resident memory of this process>

    python bench/step.py [--preset paper] [--size 64] [--batch 8] [--steps 10] [--threads N]
"""
import argparse, resource, statistics, time

import torch

from tunit_nb.data import Digits
from tunit_nb.training import PRESETS, TrainConfig, Trainer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', default='paper', choices=list(PRESETS))
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--steps', type=int, default=10, help='timed steps')
    parser.add_argument('--untimed', type=int, default=2, help='steps before timing starts')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: PyTorch\'s choice)')
    args = parser.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    cfg = TrainConfig.preset(args.preset, size=args.size, batch_size=args.batch, warmup_batch_size=None,
                             warmup_iters=0, device='cpu')
    trainer = Trainer(cfg, Digits('train', size=args.size))
    params = {name: sum(p.numel() for p in getattr(trainer.model, name).parameters()) / 1e6
              for name in ('guiding', 'generator', 'discriminator')}
    print(f"preset={args.preset} size={args.size} batch={args.batch} threads={torch.get_num_threads()} "
          f"params(M): E={params['guiding']:.2f} G={params['generator']:.2f} D={params['discriminator']:.2f}")
    for _ in range(args.untimed): trainer.step()
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - t0)
        print(f"  step {i + 1}: {times[-1]:.3f} s", flush=True)
    trainer.flush()  # and check that every loss stayed finite
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"s_per_iter={statistics.median(times):.3f} peak_rss_mb={peak:.0f}")


if __name__ == '__main__':
    main()
