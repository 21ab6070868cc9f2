"""Benchmark: translations that keep the source's content, measured factor by factor.

For each embedded data set (`digits`: the domain is the digit; `styled-digits`: the digit is the content and
the domain one of five looks, 00b_styled_digits) and each seed, a run of the preset chosen for it (as
`tunit train --data NAME --seed S`), evaluated on the held-out images (14_evaluation): clustering accuracy,
translation (domain) accuracy overall and its minimum over domains, content accuracy (styled digits only),
diversity, and with --fid mFID beside its floor (pytorch-fid's Inception weights must be at hand; the real
images' features are kept in RUNS/fid-features.pt for the next run). Prints a table of the mean over seeds
next to the targets, and writes every run's figures to RUNS/results.json.

    python bench/translation.py [--data digits styled-digits] [--seeds 0 1 2] [--set FIELD=VALUE ...]
                                [--runs DIR] [--fid] [--max-fakes N] [--fid-features FILE]
                                [--reuse] [--threads 1]

`--set` changes fields of the preset, e.g. `--set w_style=0` (the loss ablation of 19_experiments); `--reuse`
evaluates a finished run of the same configuration in RUNS again instead of training it (e.g. to add mFID).
"""
import argparse, hashlib, json, time, warnings
from pathlib import Path

import numpy as np
import torch

from tunit_nb.config import TrainConfig, choose_preset
from tunit_nb.cli import saved_config
from tunit_nb.training import evaluate_run, load_run, train, training_images
from guiding_digits import field_values

TARGETS = {'digits': dict(clustering_accuracy=0.95, translation_accuracy=0.95, min_domain_accuracy=0.85, diversity=0.3),
           'styled-digits': dict(clustering_accuracy=0.95, translation_accuracy=0.90, content_accuracy=0.90, diversity=0.3)}
COLUMNS = ('clustering_accuracy', 'translation_accuracy', 'min_domain_accuracy', 'content_accuracy', 'diversity',
           'mfid', 'mfid_floor')


class KeptFeatures(torch.nn.Module):
    "A feature extractor that keeps the features of the real images' batches in a file: every run's mFID sees them again."
    def __init__(self, extractor, path:Path):
        super().__init__()
        self.extractor, self.path, self.calls, self.fresh = extractor, path, [], {}
        self.kept = torch.load(path, weights_only=True) if path.is_file() else {}
    def forward(self, x):                                      # (b, 3, h, w) in [-1, 1] -> (b, d)
        key = hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
        self.calls.append(key)
        if key in self.kept: return self.kept[key]
        self.fresh[key] = feats = self.extractor(x).detach().cpu()
        return feats
    def keep(self, real:int):
        "Keep the features of the first `real` batches of this run (`mfid` starts with the real images), forget the rest."
        self.kept.update({key: self.fresh[key] for key in self.calls[:real] if key in self.fresh})
        self.calls, self.fresh = [], {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.kept, self.path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', nargs='+', default=list(TARGETS), choices=list(TARGETS))
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--set', nargs='+', default=[], metavar='FIELD=VALUE', help='TrainConfig fields to change')
    p.add_argument('--runs', type=Path, default=Path('runs/bench-translation'), help='where the runs go')
    p.add_argument('--fid', action='store_true', help="also mFID and its floor (needs pytorch-fid's weights; slow on a CPU)")
    p.add_argument('--fid-features', type=Path, help="file of the real images' Inception features, shared between "
                   "benchmarks (default: RUNS/fid-features.pt)")
    p.add_argument('--max-fakes', type=int, help='mFID: at most this many translations per domain (default: every '
                   'held-out source of another domain)')
    p.add_argument('--reuse', action='store_true', help='evaluate a finished run of the same configuration again')
    p.add_argument('--threads', type=int, default=1, help='torch threads; 1 is fastest with two benchmarks on 2 cores')
    a = p.parse_args()
    try: changes = field_values(a.set)
    except ValueError as e: p.error(str(e))
    torch.set_num_threads(a.threads)
    extractor = None
    if a.fid:
        from tunit_nb.fid import InceptionFeatures
        extractor = KeptFeatures(InceptionFeatures(), a.fid_features or a.runs / 'fid-features.pt')   # a clear error without the weights
    results, rows = [], []
    for data in a.data:
        preset, chosen, _ = choose_preset(data, torch.cuda.is_available())
        runs = []
        for seed in a.seeds:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')                # a shortened schedule's notice
                cfg = TrainConfig.preset(preset, **{**chosen, **changes, 'data': data, 'seed': seed})
            out, start = a.runs / f'{data}-seed{seed}', time.time()
            if a.reuse and (out / 'metrics.json').is_file() and saved_config(out) == cfg:
                metrics = json.loads((out / 'metrics.json').read_text())
                minutes = metrics['seconds'] / 60                  # the training's own time
            else:
                metrics = train(cfg, out, force=True, progress=False)
                minutes = (time.time() - start) / 60
            if extractor is not None:
                _, model = load_run(out, 'cpu')
                metrics = evaluate_run(model, cfg, extractor=extractor, cache=out / 'cache', max_fakes=a.max_fakes)
                extractor.keep(-(-len(training_images(cfg, out / 'cache')) // 50) + -(-metrics['n_images'] // 50))
            figures = {c: metrics[c] for c in COLUMNS if c in metrics}
            runs.append(figures)
            results.append(dict(data=data, seed=seed, preset=preset, changes=changes, minutes=round(minutes, 2), **figures,
                                translation_accuracy_per_domain=metrics.get('translation_accuracy_per_domain')))
            a.runs.mkdir(parents=True, exist_ok=True)
            (a.runs / 'results.json').write_text(json.dumps(results, indent=1))
            print(f"{data} seed {seed} ({minutes:.1f} min): " + ' '.join(f'{c}={v:.3f}' for c, v in figures.items()), flush=True)
        rows.append((data, runs))
    print(f"\nmeans over seeds {a.seeds}" + (f" with {changes}" if changes else '') + " (target in brackets)")
    shown = [c for c in COLUMNS if any(c in r for _, runs in rows for r in runs)]
    print('| data | ' + ' | '.join(shown) + ' |'); print('|---' * (len(shown) + 1) + '|')
    for data, runs in rows:
        cell = lambda c: (f"{np.mean([r[c] for r in runs]):.3f}" + (f" (≥ {TARGETS[data][c]})" if c in TARGETS[data] else '')
                          if all(c in r for r in runs) else '')
        print(f'| {data} | ' + ' | '.join(cell(c) for c in shown) + ' |')


if __name__ == '__main__':
    main()
