"""Benchmark: what a few labels buy (semi-supervised TUNIT, 16d_semi).

For each embedded data set (`digits`: the ten digits are the domains; `styled-digits`: the five looks are) and
each number N of labelled training images per class (0: TUNIT without labels), a run of the data set's preset
with `--labels-per-class N` (the labelled images chosen with the run's seed), for several seeds, evaluated on
the held-out split: named accuracy (pseudo-domain k is the k-th class, no matching), clustering accuracy
(Hungarian matching) and translation (domain) accuracy (14_evaluation). Prints a table of the means over
seeds (the semi-supervised table of the paper in miniature) and writes every run's figures to RUNS/results.json.

    python bench/semi.py [--data digits styled-digits] [--labels 0 1 5 20] [--seeds 0 1 2] [--set FIELD=VALUE ...]
                         [--runs DIR] [--warmup-only] [--reuse] [--threads 1]

`--warmup-only` trains E's warm-up alone (no G, D: no translation accuracy) and scores its clusters and those of
each of E's trials (which trial the choice keeps), in a fraction of the time; `--reuse` scores a finished run of
the same configuration in RUNS again instead of training it (`ln -s` a run of bench/translation.py there as
DATA-0-seedS to reuse it for N = 0).
"""
import argparse, json, time, warnings
from pathlib import Path

import numpy as np
import torch

from tunit_nb.cli import saved_config
from tunit_nb.clustering import predict
from tunit_nb.config import TrainConfig
from tunit_nb.data import to_signed
from tunit_nb.evaluation import cluster_metrics
from tunit_nb.labels import best_choice, named_accuracy
from tunit_nb.trainer import train_guiding
from tunit_nb.training import heldout_images, train, training_images
from guiding_digits import field_values

TARGETS = {1: 0.90, 5: 0.97}     # named accuracy, on both data sets
COLUMNS = ('named_accuracy', 'clustering_accuracy', 'translation_accuracy')


def warmup_only(cfg:TrainConfig) -> dict:
    """E's warm-up alone, scored on the held-out images: named accuracy (with labels), clustering accuracy, and
    `trials`: each of E's trials' clustering accuracy, by the sub-head its choice judges it by, in order."""
    data = training_images(cfg)
    images, targets = heldout_images(cfg)
    x, t, trials = to_signed(images), targets.numpy(), []
    def score_trial(iteration, parts, trainer):   # a trial's last step: the weights `end_trial` judges next
        if cfg.restarts > 1 and iteration % cfg.restart_iters == 0 and iteration <= cfg.restarts * cfg.restart_iters:
            head = best_choice(*trainer.head_scores())
            domains = predict(trainer.model.guiding, x, heads=True)[head].argmax(1).numpy()
            trials.append(round(cluster_metrics(t, domains)['clustering_accuracy'], 3))
    trainer = train_guiding(cfg, data, callback=score_trial)
    domains = predict(trainer.model.guiding, x).numpy()
    scores = cluster_metrics(t, domains)
    if trainer.names: scores['named_accuracy'] = named_accuracy(domains, t, trainer.names, data.classes)
    return dict(scores, trials=trials)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', nargs='+', default=['digits', 'styled-digits'], choices=['digits', 'styled-digits'])
    p.add_argument('--labels', type=int, nargs='+', default=[0, 1, 5, 20], help='labelled images per class')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--set', nargs='+', default=[], metavar='FIELD=VALUE', help='TrainConfig fields to change')
    p.add_argument('--runs', type=Path, default=Path('runs/bench-semi'), help='where the runs go')
    p.add_argument('--warmup-only', action='store_true', help="E's warm-up alone: named and clustering accuracy")
    p.add_argument('--reuse', action='store_true', help='score a finished run of the same configuration again')
    p.add_argument('--threads', type=int, default=1, help='torch threads; 1 is fastest with two benchmarks on 2 cores')
    a = p.parse_args()
    try: changes = field_values(a.set)
    except ValueError as e: p.error(str(e))
    torch.set_num_threads(a.threads)
    a.runs.mkdir(parents=True, exist_ok=True)
    results, table = [], {}
    for data in a.data:
        for n in a.labels:
            rows = []
            for seed in a.seeds:
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')              # a shortened schedule's notice
                    cfg = TrainConfig.preset(data, **{**changes, 'labels_per_class': n, 'seed': seed})
                out, start = a.runs / f"{data}-{n}-seed{seed}{'-warmup' if a.warmup_only else ''}", time.time()
                if a.warmup_only: metrics = warmup_only(cfg)
                elif a.reuse and (out / 'metrics.json').is_file() and saved_config(out) == cfg:
                    metrics = json.loads((out / 'metrics.json').read_text())
                else: metrics = train(cfg, out, force=True, progress=False)
                figures = {c: metrics[c] for c in COLUMNS if metrics.get(c) is not None}
                rows.append(figures)
                trials = {'trials': metrics['trials']} if metrics.get('trials') else {}
                results.append(dict(data=data, labels_per_class=n, seed=seed, changes=changes, warmup_only=a.warmup_only,
                                    minutes=round((time.time() - start) / 60, 2), **figures, **trials))
                (a.runs / 'results.json').write_text(json.dumps(results, indent=1))
                print(f"{data} {n} per class, seed {seed} ({results[-1]['minutes']:.1f} min): "
                      + ' '.join(f'{c}={v:.3f}' for c, v in figures.items())
                      + (f" (E's trials: {' / '.join(map(str, trials['trials']))})" if trials else ''), flush=True)
            table[data, n] = rows
    print(f"\nmeans over seeds {a.seeds}" + (f" with {changes}" if changes else '') + " (target in brackets)")
    print('| data | labels per class | ' + ' | '.join(COLUMNS) + ' |'); print('|---' * (len(COLUMNS) + 2) + '|')
    for (data, n), rows in table.items():
        cell = lambda c: ((f"{np.mean([r[c] for r in rows]):.3f} (" + ' / '.join(f'{r[c]:.3f}' for r in rows) + ')'
                           + (f" (≥ {TARGETS[n]})" if c == 'named_accuracy' and n in TARGETS else ''))
                          if rows and all(c in r for r in rows) else '–')
        print(f'| {data} | {n} | ' + ' | '.join(cell(c) for c in COLUMNS) + ' |')


if __name__ == '__main__':
    main()
