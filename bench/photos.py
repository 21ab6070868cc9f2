"""Benchmark: TUNIT's clustering of real photographs against k-means on the same pixels.

Builds the folders of real images of `tunit_nb.photos` (chapter 16b_photos) from those in the scikit-image wheel
(a dev dependency), each with class sub-folders that only the evaluation reads:
  photos    crops of six colour photographs (astronaut, chelsea, coffee, rocket, retina, hubble_deep_field),
            150 each, a crop's side 25-50% of the photo's short side: the domain is the source photo
  textures  crops of three grey textures (brick, grass, gravel), 200 each, 15-35% of the side
  faces     lfw_subset: 100 faces and 100 non-faces, 25 px, grey
Then, per folder and seed: k-means (K = the number of classes) on the training images' pixels at the run's
size, judged on the held-out images; and a TUNIT run (`tunit train --data FOLDER --k K --seed S`, the preset
chosen for the data and the device unless --preset) judged on the same held-out images (metrics.json).
Prints a table: per folder, TUNIT's clustering accuracy and NMI per seed and their mean next to k-means', and
writes every run's figures to RUNS/results.json.

    python bench/photos.py [--root DIR] [--folders photos textures faces] [--seeds 0 1 2] [--preset NAME]
                           [--set FIELD=VALUE ...] [--runs DIR]
"""
import argparse, json, time, warnings
from pathlib import Path

import numpy as np
import torch

from tunit_nb.config import TrainConfig, choose_preset
from tunit_nb.photos import PHOTO_FOLDERS, photo_folder, kmeans_on_pixels
from tunit_nb.training import train
from guiding_digits import field_values

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', type=Path, default=Path('runs/bench-photos/data'), help='where the folders are built')
    p.add_argument('--runs', type=Path, default=Path('runs/bench-photos'), help='where the TUNIT runs go')
    p.add_argument('--folders', nargs='+', default=list(PHOTO_FOLDERS), choices=PHOTO_FOLDERS)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--preset', help='preset of the TUNIT runs (default: chosen for the data and the device)')
    p.add_argument('--set', nargs='+', default=[], metavar='FIELD=VALUE', help='TrainConfig fields to change')
    a = p.parse_args()
    try: changes = field_values(a.set)
    except ValueError as e: p.error(str(e))
    rows, results = [], []
    for name in a.folders:
        try: folder = photo_folder(name, a.root)
        except ImportError as e: raise SystemExit(f"bench/photos.py: {e}")
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
            results.append(dict(folder=name, k=k, preset=preset, seed=seed, minutes=round(minutes[-1], 2),
                                size=cfg.size, tunit={m: metrics[m] for m in ('clustering_accuracy', 'nmi', 'ari')},
                                kmeans=kmeans[-1]))
            a.runs.mkdir(parents=True, exist_ok=True)
            (a.runs / 'results.json').write_text(json.dumps(results, indent=1))
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
