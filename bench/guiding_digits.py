"""Benchmark: E finds the 10 digit classes without labels.

Trains E's warm-up phase (`TrainConfig.preset('digits')`: four trial starts of E, 600 steps each, the one
with the lowest IIC loss trained on to 3,000 steps) on the digits training split (1,437 images, labels never
used), evaluates the argmax of the selected domain head on the held-out split (360 images) with Hungarian
accuracy, NMI and ARI, for several seeds. For comparison it clusters the same held-out
images' raw 8x8 pixels (64 values) with k-means and spectral clustering.
Ends with one line: accuracy=<mean over seeds> nmi=<...> ari=<...> seconds=<wall per seed> kmeans_accuracy=<...>

    python bench/guiding_digits.py [--seeds 0 1 2] [--iters N] [--threads 1] [--set FIELD=VALUE ...]

`--set` changes fields of the preset, e.g. `--set restarts=1 w_balance=10` (19_experiments has the ablations).
"""
import argparse, time, warnings

import numpy as np
import torch
from sklearn.cluster import KMeans, SpectralClustering
from sklearn.datasets import load_digits

from tunit_nb.data import Digits, to_signed
from tunit_nb.evaluation import cluster_metrics
from tunit_nb.config import TrainConfig
from tunit_nb.clustering import check_clusters, predict
from tunit_nb.trainer import train_guiding


def field_values(pairs:list) -> dict:
    "{field: value} from ['field=value', ...], each value read as the field's type (a number, a bool, none)."
    from tunit_nb.cli import option_type
    import typing
    hints, out = typing.get_type_hints(TrainConfig), {}
    for pair in pairs:
        name, eq, text = pair.partition('=')
        if not eq or name not in hints: raise ValueError(f"--set takes FIELD=VALUE with a TrainConfig field, not {pair!r}")
        out[name] = text.lower() in ('1', 'true', 'yes') if hints[name] is bool else option_type(hints[name])(text)
    return out


def raw_pixel_baselines(held:Digits):
    "k-means and spectral clustering of the held-out images' raw 8x8 pixels."
    pixels = load_digits().data[held.indices]                                   # (360, 64)
    kmeans = KMeans(10, n_init=10, random_state=0).fit_predict(pixels)
    spectral = SpectralClustering(10, affinity='nearest_neighbors', random_state=0).fit_predict(pixels)
    return cluster_metrics(held.targets, kmeans), cluster_metrics(held.targets, spectral)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=None, help='warm-up steps (default: the preset)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads; 1 is fastest on a 2-core machine shared with other work')
    parser.add_argument('--set', nargs='+', default=[], metavar='FIELD=VALUE',
                        help="TrainConfig fields to change from the digits preset, e.g. restarts=1 w_balance=10")
    args = parser.parse_args()
    try: changes = field_values(args.set)
    except ValueError as e: parser.error(str(e))
    torch.set_num_threads(args.threads)
    cfg0 = TrainConfig.preset('digits', **changes)
    print(f'config: {cfg0}')
    train, held = Digits('train', size=cfg0.size), Digits('heldout', size=cfg0.size)
    x_held = to_signed(held.images)
    kmeans, spectral = raw_pixel_baselines(held)
    print(f"raw 8x8 pixels of the {len(held)} held-out images: "
          f"k-means accuracy={kmeans['clustering_accuracy']:.3f} nmi={kmeans['nmi']:.3f} ari={kmeans['ari']:.3f}; "
          f"spectral accuracy={spectral['clustering_accuracy']:.3f} nmi={spectral['nmi']:.3f} ari={spectral['ari']:.3f}")
    results = []
    for seed in args.seeds:
        cfg = TrainConfig.preset('digits', **{**changes, 'seed': seed})
        def progress(it, parts, run):  # held-out figures along the way, for the record only (training never sees them)
            if it % 250 == 0:
                m = cluster_metrics(held.targets, predict(run.model.guiding, x_held))
                print(f"  seed {seed} iteration {it}: {run.seconds:.0f} s, iic={parts['iic']:.3f}, "
                      f"held-out accuracy of head {int(run.model.guiding.head)}={m['clustering_accuracy']:.3f}", flush=True)
        t0 = time.time()
        run = train_guiding(cfg, train, iters=args.iters, callback=progress)
        seconds = time.time() - t0
        pseudo = predict(run.model.guiding, x_held)
        check_clusters(pseudo, cfg.k, 'the held-out digits')
        m = cluster_metrics(held.targets, pseudo)
        results.append({**m, 'seconds': seconds})
        print(f"seed {seed}: accuracy={m['clustering_accuracy']:.3f} nmi={m['nmi']:.3f} ari={m['ari']:.3f} "
              f"seconds={seconds:.0f} iters={run.iteration} head={int(run.model.guiding.head)} "
              f"head_iic={[round(v, 3) for v in run.head_losses]} "
              f"restart_iic={[round(v, 3) for v in run.restart_losses]}", flush=True)
    mean = lambda k: np.mean([r[k] for r in results])
    print(f"accuracy={mean('clustering_accuracy'):.3f} nmi={mean('nmi'):.3f} ari={mean('ari'):.3f} "
          f"seconds={mean('seconds'):.0f} kmeans_accuracy={kmeans['clustering_accuracy']:.3f}")


if __name__ == '__main__':
    main()
