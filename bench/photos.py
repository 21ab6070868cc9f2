"""Benchmark: TUNIT's clustering of real photographs against k-means on the same pixels.

Builds folders of real images from those in the scikit-image wheel (a dev dependency), each with class
sub-folders that only the evaluation reads:
  photos    crops of six colour photographs (astronaut, chelsea, coffee, rocket, retina, hubble_deep_field),
            150 each, a crop's side 25-50% of the photo's short side: the domain is the source photo
  textures  crops of three grey textures (brick, grass, gravel), 200 each, 15-35% of the side
  faces     lfw_subset: 100 faces and 100 non-faces, 25 px, grey
Then, per folder and seed: k-means (K = the number of classes) on the training images' pixels at the run's
size, judged on the held-out images; and a TUNIT run (`tunit train --data FOLDER --k K --seed S`, the preset
chosen for the data and the device unless --preset) judged on the same held-out images (metrics.json).
Prints a table: per folder, TUNIT's clustering accuracy and NMI per seed and their mean next to k-means'.

    python bench/photos.py [--root DIR] [--folders photos textures faces] [--seeds 0 1 2] [--preset NAME]
                           [--set FIELD=VALUE ...] [--runs DIR]
"""
import argparse, sys, time, warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tunit_nb.config import TrainConfig, choose_preset
from tunit_nb.evaluation import cluster_metrics
from tunit_nb.loading import get_dataset
from tunit_nb.training import train
from guiding_digits import field_values

FOLDERS = ('photos', 'textures', 'faces')


def _skimage():
    try: import skimage.data
    except ImportError: sys.exit("bench/photos.py needs scikit-image for its photographs: pip install scikit-image "
                                 "(it is in the dev extra: pip install -e '.[dev]')")
    return skimage.data


def crops(img:np.ndarray, n:int, lo:float, hi:float, size:int, rng) -> list:
    "`n` square crops of `img` (side lo..hi of its short side, anywhere in it) resized to `size` px, as RGB PIL images."
    if img.ndim == 2: img = np.stack([img] * 3, -1)
    img, (h, w) = img[..., :3], img.shape[:2]
    out = []
    for _ in range(n):
        side = int(rng.uniform(lo, hi) * min(h, w))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        out.append(Image.fromarray(img[y:y + side, x:x + side]).resize((size, size), Image.BICUBIC))
    return out


def build(root:Path, name:str, size:int=64) -> Path:
    "The benchmark folder `name` under `root` (written once, kept: its files' dates key the decoded cache)."
    folder = root / name
    if (folder / '.complete').exists(): return folder
    data, rng = _skimage(), np.random.default_rng(0)
    if name == 'photos':
        groups = {p: crops(getattr(data, p)(), 150, 0.25, 0.5, size, rng)
                  for p in ('astronaut', 'chelsea', 'coffee', 'rocket', 'retina', 'hubble_deep_field')}
    elif name == 'textures':
        groups = {t: crops(getattr(data, t)(), 200, 0.15, 0.35, size, rng) for t in ('brick', 'grass', 'gravel')}
    elif name == 'faces':
        lfw = (data.lfw_subset() * 255).round().astype(np.uint8)      # (200, 25, 25): 100 faces, then 100 non-faces
        groups = {'face': [Image.fromarray(f).convert('RGB') for f in lfw[:100]],
                  'nonface': [Image.fromarray(f).convert('RGB') for f in lfw[100:]]}
    else: raise ValueError(f"unknown folder {name!r}: choose from {', '.join(FOLDERS)}")
    for cls, images in groups.items():
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images): img.save(folder / cls / f'{i:04d}.png')
    (folder / '.complete').touch()
    return folder


def kmeans_on_pixels(folder:Path, k:int, size:int, seed:int) -> dict:
    "k-means on the training images' pixels at `size` px, its clusters judged on the held-out images."
    from sklearn.cluster import KMeans
    train, held = (get_dataset(str(folder), split, size=size) for split in ('train', 'heldout'))
    pixels = lambda d: d.images.flatten(1).float().numpy() / 255
    fitted = KMeans(k, n_init=10, random_state=seed).fit(pixels(train))
    return cluster_metrics(held.targets, torch.as_tensor(fitted.predict(pixels(held))))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', type=Path, default=Path('runs/bench-photos/data'), help='where the folders are built')
    p.add_argument('--runs', type=Path, default=Path('runs/bench-photos'), help='where the TUNIT runs go')
    p.add_argument('--folders', nargs='+', default=list(FOLDERS), choices=FOLDERS)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--preset', help='preset of the TUNIT runs (default: chosen for the data and the device)')
    p.add_argument('--set', nargs='+', default=[], metavar='FIELD=VALUE', help='TrainConfig fields to change')
    a = p.parse_args()
    try: changes = field_values(a.set)
    except ValueError as e: p.error(str(e))
    rows = []
    for name in a.folders:
        folder = build(a.root, name)
        k = len([c for c in folder.iterdir() if c.is_dir()])
        preset, chosen, why = (a.preset, {}, 'asked for') if a.preset else choose_preset(str(folder), torch.cuda.is_available())
        tunit, kmeans, minutes = [], [], []
        for seed in a.seeds:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')            # a shortened schedule's notice
                cfg = TrainConfig.preset(preset, **{**chosen, **changes, 'data': str(folder), 'k': k, 'seed': seed})
            kmeans.append(kmeans_on_pixels(folder, k, cfg.size, seed))
            start = time.time()
            metrics = train(cfg, a.runs / f'{name}-seed{seed}', force=True, progress=False)
            minutes.append((time.time() - start) / 60)
            tunit.append(metrics)
            print(f"{name} seed {seed} ({preset}, {minutes[-1]:.1f} min): TUNIT accuracy={metrics['clustering_accuracy']:.3f} "
                  f"nmi={metrics['nmi']:.3f}, k-means accuracy={kmeans[-1]['clustering_accuracy']:.3f} "
                  f"nmi={kmeans[-1]['nmi']:.3f}", flush=True)
        rows.append((name, k, preset, tunit, kmeans, minutes))
    print(f"\n| folder | K | preset | TUNIT accuracy (seeds) | mean | NMI | k-means accuracy | NMI | min per run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, k, preset, tunit, kmeans, minutes in rows:
        acc = [m['clustering_accuracy'] for m in tunit]
        mean = lambda ms, key: np.mean([m[key] for m in ms])
        print(f"| {name} | {k} | {preset} | {' '.join(f'{v:.3f}' for v in acc)} | {np.mean(acc):.3f} | "
              f"{mean(tunit, 'nmi'):.3f} | {mean(kmeans, 'clustering_accuracy'):.3f} | {mean(kmeans, 'nmi'):.3f} | "
              f"{np.mean(minutes):.1f} |")


if __name__ == '__main__':
    main()
