"""Benchmark: seconds per full TUNIT training iteration (GAN phase: D step, then G + E step) on the CPU.

Uses real images (scikit-learn's digits rendered at --size), the preset's networks, and skips the warm-up
phase (E alone) so that every timed step is a full GAN step. A few untimed steps come first.
Ends with one line: s_per_iter=<median> peak_rss_mb=<peak resident memory of this process>

    python bench/step.py [--preset paper] [--size 64] [--batch 8] [--steps 10] [--threads N] [--mode eager]
    python bench/step.py --compare      # each mode in its own process, then their speed relative to eager fp32
    python bench/step.py --compare --modes eager bf16 reference --reference ../tunit-reference --rounds 3
                                        # ... and to the reference implementation's own iteration, in turn 3 times

Modes: eager (fp32, the default), channels_last, compile (torch.compile of E, G, D's passes but R1's, and G's and
D's RMSprop steps), bf16 (autocast; on the CPU only where the processor has fast bf16), all (channels_last and
bf16), compile_bf16 (on the CPU with
torch 2.14 the compiled bf16 E yields NaN at the second step, which the trainer's non-finite check reports),
free_memory (eager with keep_memory=False: glibc hands large freed blocks back to the OS, as by default).
The step also prints the minor page faults per step (the cost keep_memory removes), and on a GPU the final line
adds images_per_s and gpu_peak_mb (torch.cuda.max_memory_allocated). bench/gpu_check.sh runs the CUDA comparison.
"""
import argparse, re, resource, statistics, subprocess, sys, time
from pathlib import Path

import torch

from tunit_nb.data import Digits
from tunit_nb.config import PRESETS, TrainConfig
from tunit_nb.trainer import Trainer

MODES = dict(eager={}, channels_last=dict(channels_last=True), compile=dict(compile=True), bf16=dict(amp='bf16'),
             all=dict(channels_last=True, amp='bf16'), compile_bf16=dict(compile=True, amp='bf16'),
             free_memory=dict(keep_memory=False))


def make_trainer(preset:str, size:int, batch:int, mode:str='eager', device:str='cpu') -> Trainer:
    "The benchmarked trainer: the preset's networks on the digits, GAN phase from the first step (no warm-up)."
    cfg = TrainConfig.preset(preset, size=size, batch_size=batch, warmup_batch_size=None, warmup_iters=0,
                             device=device, **MODES[mode])
    return Trainer(cfg, Digits('train', size=size))


def run(args):
    if args.threads: torch.set_num_threads(args.threads)
    trainer = make_trainer(args.preset, args.size, args.batch, args.mode, args.device)
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
    peak, median = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, statistics.median(times)
    gpu = (f" images_per_s={args.batch / median:.1f} gpu_peak_mb={torch.cuda.max_memory_allocated() / 2 ** 20:.0f}"
           if trainer.device.type == 'cuda' else '')
    print(f"s_per_iter={median:.3f} peak_rss_mb={peak:.0f}{gpu}")


def _command(args, mode):
    common = ['--size', str(args.size), '--batch', str(args.batch), '--steps', str(args.steps), '--untimed', str(args.untimed)]
    if args.threads: common += ['--threads', str(args.threads)]
    if mode == 'reference':   # the reference implementation's own iteration (bench/reference_step.py)
        return [sys.executable, str(Path(__file__).with_name('reference_step.py')), '--reference', args.reference] + common
    return [sys.executable, __file__, '--preset', args.preset, '--mode', mode, '--device', args.device] + common


def compare(args):
    "Each mode in its own process, in turn, `--rounds` times; medians per mode and speeds relative to eager fp32 (and to the reference)."
    if 'reference' in args.modes and not args.reference:
        raise SystemExit("mode 'reference' needs --reference: a clone of https://github.com/clovaai/tunit")
    results = {mode: [] for mode in args.modes}
    for turn in range(args.rounds):
        for mode in args.modes:
            out = subprocess.run(_command(args, mode), capture_output=True, text=True)
            found = re.search(r's_per_iter=([\d.]+) peak_rss_mb=(\d+)', out.stdout)
            if not found:
                print(f"{mode}: failed\n{out.stderr[-2000:]}"); continue
            results[mode].append((float(found[1]), int(found[2]), turn))
            gpu = re.search(r'images_per_s=\S+ gpu_peak_mb=\d+', out.stdout)   # on a GPU
            print(f"round {turn + 1} {mode:14s} s_per_iter={found[1]} peak_rss_mb={found[2]}" + (f" {gpu[0]}" if gpu else ''),
                  flush=True)
    med = {m: (statistics.median(s for s, _, _ in r), max(p for _, p, _ in r)) for m, r in results.items() if r}
    print('medians: ' + ' '.join(f"{m}={s:.3f}s/{p}MB" for m, (s, p) in med.items()))
    for base in ('eager', 'reference'):
        if base in med:
            print(f'speed relative to {base} (higher is faster): ' +
                  ' '.join(f"{m}={med[base][0] / s:.2f}" for m, (s, _) in med.items()))
    if 'reference' in med and args.rounds > 1:   # the machine's speed drifts: each mode against the same round's reference
        ref = {turn: s for s, _, turn in results['reference']}
        for m, r in results.items():
            if m != 'reference':
                print(f'{m} against the reference, round by round: ' +
                      ' '.join(f"{ref[turn] / s:.2f}" for s, _, turn in r if turn in ref))
    if 'eager' in med: print(f"s_per_iter={med['eager'][0]:.3f} peak_rss_mb={med['eager'][1]}")


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
    parser.add_argument('--modes', nargs='+', default=['eager', 'channels_last', 'compile', 'bf16', 'all'],
                        choices=list(MODES) + ['reference'])
    parser.add_argument('--rounds', type=int, default=1, help='with --compare: run the modes in turn this many times')
    parser.add_argument('--reference', default=None, help="a clone of https://github.com/clovaai/tunit, for mode 'reference' "
                        "(bench/reference_step.py)")
    args = parser.parse_args()
    compare(args) if args.compare else run(args)


if __name__ == '__main__':
    main()
