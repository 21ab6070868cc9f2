"""Benchmark: training from an image folder runs as fast as from memory, and a big folder stays within its uint8 size.

Speed: the digits written as PNG files (class sub-folders, in a temporary folder) against the in-memory digits,
the digits preset on both, the same seed; each run times `--steps` warm-up steps then `--steps` GAN steps
(its schedule shortened to that), the two data sources alternating `--rounds` times in one process. The folder
is decoded once (`decode_folder`, the time reported apart) and then read like the digits.
Memory (`--big N`): N generated images at `--big-size` px in a folder, with `image_memory` below their uint8
size, so that they are memory-mapped from a cache file; in a fresh process, decoded (first run) or opened
(second run), then an epoch of batches taken as the trainer takes them: the peak resident memory above the
process's start against the uint8 size (the networks' own memory is not part of it).

    python bench/folder_speed.py [--steps 100] [--rounds 2] [--big 50000 --big-size 128 --big-dir DIR]
    python bench/folder_speed.py --steps 0 --big 5000       # only the memory check

Ends with: folder_vs_memory=<ratio of iterations per second> (and big_peak_over_uint8=<ratio> with --big)
"""
import argparse, json, os, subprocess, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import torch

from tunit_nb.config import TrainConfig
from tunit_nb.data import Digits, save_images
from tunit_nb.loading import decode_folder, get_dataset
from tunit_nb.trainer import Trainer


def seconds_per_step(cfg:TrainConfig, data, steps:int) -> float:
    "Mean seconds of the run's 2 x `steps` steps (warm-up then GAN), after one untimed step."
    trainer = Trainer(cfg, data)
    trainer.step()
    start = time.perf_counter()
    while trainer.iteration < cfg.iters: trainer.step()
    return (time.perf_counter() - start) / (cfg.iters - 1)


def speed(steps:int, rounds:int):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')      # the shortened schedule's notice
        cfg = TrainConfig.preset('digits', iters=2 * steps, warmup_iters=steps, restarts=1)
    with tempfile.TemporaryDirectory() as tmp:
        digits = Digits('all', size=32)
        start = time.perf_counter()
        save_images(digits.images, Path(tmp) / 'digits', digits.targets)
        print(f"wrote {len(digits)} digits as PNG files in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        decode_folder(Path(tmp) / 'digits', 32)
        print(f"decoded them once in {time.perf_counter() - start:.2f} s")
        memory = get_dataset('digits', 'train', size=32)
        folder = get_dataset(str(Path(tmp) / 'digits'), 'train', size=32)
        assert len(folder) == len(memory)
        times = {'memory': [], 'folder': []}
        for r in range(rounds):
            for name, data in (('memory', memory), ('folder', folder)) if r % 2 == 0 else (('folder', folder), ('memory', memory)):
                times[name].append(seconds_per_step(cfg, data, steps))
                print(f"round {r}: {name:6s} {1 / times[name][-1]:6.2f} it/s")
    ratio = np.median(times['memory']) / np.median(times['folder'])
    print(f"median: memory {1 / np.median(times['memory']):.2f} it/s, folder {1 / np.median(times['folder']):.2f} it/s")
    return ratio


def write_big_folder(folder:Path, n:int, size:int):
    "n smooth colour images of size x size px (gradients with a disc), PNG; kept when the folder already has them."
    if folder.is_dir() and len(list(folder.glob('*.png'))) == n: return
    folder.mkdir(parents=True, exist_ok=True)
    from PIL import Image
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    start = time.perf_counter()
    for i in range(n):
        a, b, c = rng.uniform(0, 255, 3)
        cx, cy, r = rng.uniform(0.2, 0.8, 2).tolist() + [rng.uniform(0.1, 0.3)]
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)
        img = np.stack([a * xx + disc * 80, b * yy, c * (1 - xx) * disc + 40], -1).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f'{i:06d}.png')
    print(f"wrote {n} images of {size} px in {time.perf_counter() - start:.0f} s")


CHILD = r'''
import json, sys, time
import torch
from tunit_nb.config import TrainConfig
from tunit_nb.data import to_signed
from tunit_nb.loading import DataOrder
from tunit_nb.training import training_images
def rss():  # resident now and at its peak, in bytes (Linux)
    fields = dict(l.split(':', 1) for l in open('/proc/self/status'))
    return [int(fields[k].split()[0]) * 1024 for k in ('VmRSS', 'VmHWM')]
folder, size, cache, budget = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
cfg = TrainConfig.preset('tiny', data=folder, size=size, image_memory=budget)
torch.zeros(1); base = rss()[0]
start = time.perf_counter(); data = training_images(cfg, cache); decode = time.perf_counter() - start
order = DataOrder(len(data), seed=0)
for _ in range(len(data) // 32):   # an epoch of batches of 32, taken as the trainer takes them
    x = to_signed(data.images[order.take(32)])
now, peak = rss()
print(json.dumps(dict(base=base, peak=peak, now=now, n=len(data), mapped=data.mapped, decode=decode)))
'''


def big(n:int, size:int, folder:Path):
    write_big_folder(folder, n, size)
    nbytes = n * 3 * size * size
    with tempfile.TemporaryDirectory() as cache:
        for label in ('first run (decodes into the cache file)', 'second run (reads the cache file)'):
            out = subprocess.run([sys.executable, '-c', CHILD, str(folder), str(size), cache, str(nbytes / 2 ** 30 / 4)],
                                 capture_output=True, text=True)
            if out.returncode: sys.exit(out.stderr)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            grown = r['peak'] - r['base']
            print(f"{label}: {n} images of {size} px, uint8 {nbytes / 2 ** 30:.2f} GiB ({r['n']} for training, "
                  f"memory-mapped: {r['mapped']}); decoding/opening {r['decode']:.1f} s; peak resident above the start "
                  f"{grown / 2 ** 30:.2f} GiB = {grown / nbytes:.2f} x the uint8 size")
    return grown / nbytes


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=100, help='timed steps per phase; 0: no speed comparison [100]')
    p.add_argument('--rounds', type=int, default=2, help='alternations of memory and folder [2]')
    p.add_argument('--big', type=int, default=0, help='images of the memory check (0: skip it) [0]')
    p.add_argument('--big-size', type=int, default=128, help='their side in pixels [128]')
    p.add_argument('--big-dir', type=Path, help='folder for them (kept for the next run) [a temporary folder]')
    a = p.parse_args()
    line = f"folder_vs_memory={speed(a.steps, a.rounds):.3f}" if a.steps else ''
    if a.big:
        if a.big_dir is None:
            with tempfile.TemporaryDirectory() as tmp: line += f" big_peak_over_uint8={big(a.big, a.big_size, Path(tmp)):.3f}"
        else: line += f" big_peak_over_uint8={big(a.big, a.big_size, a.big_dir):.3f}"
    print(line.strip())
