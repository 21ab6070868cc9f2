"""Benchmark: seconds per full TUNIT training iteration (GAN phase: D step, then G + E step) on the CPU.

Uses real images (scikit-learn's digits rendered at --size), the preset's networks, and skips the warm-up
phase (E alone) so that every timed step is a full GAN step. A few untimed steps come first.
Ends with one line: s_per_iter=<median> peak_rss_mb=<peak resident memory of this process>

    python bench/step.py [--preset paper] [--size 64] [--batch 8] [--steps 10] [--threads N] [--mode eager]
    python bench/step.py --compare      # each mode in its own process, then their speed relative to eager fp32

Modes: eager (fp32, the default), channels_last, compile (torch.compile of E and G), bf16 (autocast; on the
CPU only where the processor has fast bf16), all (channels_last and bf16), compile_bf16 (on the CPU with
torch 2.14 the compiled bf16 E yields NaN at the second step, which the trainer's non-finite check reports),
free_memory (eager with keep_memory=False: glibc hands large freed blocks back to the OS, as by default).
The step also prints the minor page faults per step (the cost keep_memory removes).
"""
import argparse, re, resource, statistics, subprocess, sys, time

import torch

from tunit_nb.data import Digits
from tunit_nb.training import PRESETS, TrainConfig, Trainer

MODES = dict(eager={}, channels_last=dict(channels_last=True), compile=dict(compile=True), bf16=dict(amp='bf16'),
             all=dict(channels_last=True, amp='bf16'), compile_bf16=dict(compile=True, amp='bf16'),
             free_memory=dict(keep_memory=False))


def run(args):
    if args.threads: torch.set_num_threads(args.threads)
    cfg = TrainConfig.preset(args.preset, size=args.size, batch_size=args.batch, warmup_batch_size=None,
                             warmup_iters=0, device=args.device, **MODES[args.mode])
    trainer = Trainer(cfg, Digits('train', size=args.size))
    params = {name: sum(p.numel() for p in getattr(trainer.model, name).parameters()) / 1e6
              for name in ('guiding', 'generator', 'discriminator')}
    print(f"preset={args.preset} size={args.size} batch={args.batch} mode={args.mode} threads={torch.get_num_threads()} "
          f"params(M): E={params['guiding']:.2f} G={params['generator']:.2f} D={params['discriminator']:.2f}", flush=True)
    for _ in range(args.untimed): trainer.step()
    times = []
    for i in range(args.steps):
        faults, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        trainer.step()
        if trainer.device.type == 'cuda': torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        print(f"  step {i + 1}: {times[-1]:.3f} s  page faults {resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults}", flush=True)
    trainer.flush()  # and check that every loss stayed finite
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"s_per_iter={statistics.median(times):.3f} peak_rss_mb={peak:.0f}")


def compare(args):
    results = {}
    for mode in args.modes:
        cmd = [sys.executable, __file__, '--preset', args.preset, '--size', str(args.size), '--batch', str(args.batch),
               '--steps', str(args.steps), '--untimed', str(args.untimed), '--mode', mode, '--device', args.device]
        if args.threads: cmd += ['--threads', str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        found = re.search(r's_per_iter=([\d.]+) peak_rss_mb=(\d+)', out.stdout)
        if not found:
            print(f"{mode}: failed\n{out.stderr[-2000:]}"); continue
        results[mode] = float(found[1]), int(found[2])
        print(f"{mode:14s} s_per_iter={found[1]} peak_rss_mb={found[2]}", flush=True)
    base = results.get('eager', (None,))[0]
    if base:
        print('speed relative to eager fp32 (higher is faster): ' +
              ' '.join(f"{m}={base / s:.2f}" for m, (s, _) in results.items()))
    if 'eager' in results: print(f"s_per_iter={results['eager'][0]:.3f} peak_rss_mb={results['eager'][1]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', default='paper', choices=list(PRESETS))
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--steps', type=int, default=10, help='timed steps')
    parser.add_argument('--untimed', type=int, default=2, help='steps before timing starts')
    parser.add_argument('--threads', type=int, default=None, help="torch threads (default: PyTorch's choice)")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--mode', default='eager', choices=list(MODES))
    parser.add_argument('--compare', action='store_true', help='run each of --modes in its own process and compare')
    parser.add_argument('--modes', nargs='+', default=['eager', 'channels_last', 'compile', 'bf16', 'all'], choices=list(MODES))
    args = parser.parse_args()
    compare(args) if args.compare else run(args)


if __name__ == '__main__':
    main()
