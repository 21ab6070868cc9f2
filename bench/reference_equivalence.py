"""Benchmark: a checkpoint written by the reference's own code (clovaai/tunit) imports into tunit_nb and gives its outputs.

For each size, the reference's networks are built by its own classes (GuidingNet, Generator, Discriminator, as its
main.py builds them: K=10, a style code of 128) with its random initialisation, their normalisation statistics and
parameters moved off their initial values (BatchNorm's running statistics, FRN's tau, gamma and beta: at their
initial values a swapped pair would go unseen), one optimiser step taken so that the optimisers have state, and
everything saved as its main.py saves a checkpoint (its `save_checkpoint`: model_N.ckpt listed in checkpoint.txt).
tunit_nb imports the log folder (`import_reference`), loads the run (`load_run`), and its `style`, `domain` and
`translate` are compared with the reference's forward passes on the same images (`C_EMA.moco`, `C_EMA.iic`,
`G_EMA(x, s)`). Then the run is exported back to the reference's layout (`export_reference`): every tensor and
optimiser state must come back equal. Prints the largest absolute differences per size and, last, one line:
max_abs_diff=<largest over sizes and outputs> domains_equal=<True|False> round_trip_equal=<True|False>

    git clone https://github.com/clovaai/tunit ../tunit-reference
    python bench/reference_equivalence.py --reference ../tunit-reference [--sizes 64 128 256]
    python bench/reference_equivalence.py --reference ../tunit-reference --write-layout tests/reference_layout.json

No reference code is part of this repository: this script imports it from --reference. `--write-layout` writes
the reference's state-dict names and shapes (64 px) for tests/test_reference.py, which checks our export against
them without the reference at hand.
"""
import argparse, builtins, contextlib, json, sys, tempfile
from pathlib import Path

import torch

from reference_step import load_reference   # bench/reference_step.py, beside this script: checks the clone
from tunit_nb.reference import export_reference, import_reference
from tunit_nb.training import load_run


@contextlib.contextmanager
def quiet():
    "The reference's constructors print ('Init Generator', ...): keep them out of the figures."
    say, builtins.print = builtins.print, lambda *a, **k: None
    try: yield
    finally: builtins.print = say


def reference_networks(size:int, k:int=10, sty_dim:int=128) -> tuple:
    "Its five networks and three optimisers as its main.py builds them, moved off their initial values."
    Generator, Discriminator, GuidingNet, _ = load_reference.modules
    with quiet():
        nets = dict(C=GuidingNet(size, {'cont': sty_dim, 'disc': k}), C_EMA=GuidingNet(size, {'cont': sty_dim, 'disc': k}),
                    G=Generator(size, sty_dim, use_sn=False), G_EMA=Generator(size, sty_dim, use_sn=False),
                    D=Discriminator(size, num_domains=k))
    with torch.no_grad():
        for net in nets.values():
            for name, t in net.state_dict().items():
                if t.is_floating_point() and name.rsplit('.', 1)[-1] in ('running_mean', 'running_var', 'tau', 'gamma', 'beta'):
                    t.add_(torch.rand_like(t) * 0.2)
                elif t.is_floating_point() and t.dim() == 1 and name.startswith('features.'):   # BatchNorm's affine
                    t.add_(torch.rand_like(t) * 0.2)
    opts = dict(C=torch.optim.Adam(nets['C'].parameters(), 1e-4, weight_decay=0.001),
                G=torch.optim.RMSprop(nets['G'].parameters(), 1e-4, weight_decay=0.0001),
                D=torch.optim.RMSprop(nets['D'].parameters(), 1e-4, weight_decay=0.0001))
    x = torch.rand(2, 3, size, size) * 2 - 1
    losses = dict(C=lambda: sum(v.square().mean() for v in nets['C'](x).values()),
                  G=lambda: nets['G'](x, torch.randn(2, sty_dim)).square().mean(),
                  D=lambda: nets['D'](x, torch.tensor([1, 2]))[0].square().mean())
    for name, opt in opts.items():   # one step each: the optimisers get state to carry over
        opt.zero_grad(); losses[name]().backward(); opt.step()
    return nets, opts


def save_as_reference(nets:dict, opts:dict, folder:Path, epoch:int=1) -> Path:
    "A checkpoint in its log folder, written by the reference's own save_checkpoint, as its main.py's save_model calls it."
    from tools.utils import save_checkpoint
    state = dict(epoch=epoch)
    for name, net in nets.items():
        state[name + '_state_dict'] = net.state_dict()
        if name not in ('G_EMA', 'C_EMA'): state[name.lower() + '_optimizer'] = opts[name].state_dict()
    with open(folder / 'checkpoint.txt', 'a+') as listing: save_checkpoint(state, listing, str(folder), epoch)
    return folder / f'model_{epoch}.ckpt'


def compare(size:int, n:int, work:Path) -> dict:
    torch.manual_seed(size)
    nets, opts = reference_networks(size)
    saved = save_as_reference(nets, opts, work)
    run = import_reference(work, work / 'run')
    _, model = load_run(run, 'cpu')
    for net in nets.values(): net.eval()
    x_src, x_ref = (torch.rand(n, 3, size, size) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        style_ref = nets['C_EMA'].moco(x_ref)
        diffs = dict(style=(model.style(x_ref) - style_ref).abs().max().item(),
                     domain_logits=(model.guiding_ema(x_src)[0] - nets['C_EMA'].iic(x_src)).abs().max().item(),
                     translate=(model.translate(x_src, x_ref) - nets['G_EMA'](x_src, style_ref)).abs().max().item())
        domains_equal = torch.equal(model.domain(x_src).cpu(), nets['C_EMA'].iic(x_src).argmax(1))
    back = torch.load(export_reference(run, work / 'back' / 'model_1.ckpt'), weights_only=True)
    original = torch.load(saved, weights_only=True)
    ours_only = lambda name: '.norm.running_' in name   # G's AdaIN statistics, which its forward never reads
    nets_equal = all(list(back[k]) == list(original[k]) and
                     all(torch.equal(back[k][n], t) for n, t in original[k].items() if not ours_only(n))
                     for k in original if k.endswith('_state_dict'))
    opts_equal = all(all(torch.equal(torch.as_tensor(back[k]['state'][i][s]).float(), torch.as_tensor(v).float())
                         for i, st in original[k]['state'].items() for s, v in st.items())
                     for k in ('c_optimizer', 'g_optimizer', 'd_optimizer'))
    return dict(diffs=diffs, domains_equal=domains_equal, round_trip_equal=nets_equal and opts_equal)


def write_layout(path:Path):
    "The reference's state-dict names and shapes of each network at 64 px, in its order."
    Generator, Discriminator, GuidingNet, _ = load_reference.modules
    with quiet():
        nets = dict(C=GuidingNet(64, {'cont': 128, 'disc': 10}), G=Generator(64, 128, use_sn=False),
                    D=Discriminator(64, num_domains=10))
    layout = dict(size=64, k=10, sty_dim=128,
                  **{p: [[n, list(t.shape)] for n, t in net.state_dict().items()] for p, net in nets.items()})
    path.write_text(json.dumps(layout) + '\n')
    print(f"{path} written: {', '.join(f'{p} {len(layout[p])} tensors' for p in 'CGD')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reference', required=True, help='a clone of https://github.com/clovaai/tunit')
    parser.add_argument('--sizes', type=int, nargs='+', default=[64, 128, 256])
    parser.add_argument('--images', type=int, default=4, help='source and reference images compared per size')
    parser.add_argument('--write-layout', type=Path, metavar='JSON', help="also write the reference's names and shapes here")
    args = parser.parse_args()
    load_reference.modules = load_reference(Path(args.reference).expanduser().resolve())
    if args.write_layout: write_layout(args.write_layout)
    results = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as work:
            r = compare(size, args.images, Path(work))
        results.append(r)
        print(f"size {size}: max |ours - reference|: " + ', '.join(f'{n} {v:.2e}' for n, v in r['diffs'].items())
              + f"; pseudo-domains equal: {r['domains_equal']}; exported back, networks and optimiser states equal: "
              f"{r['round_trip_equal']}", flush=True)
    print(f"max_abs_diff={max(max(r['diffs'].values()) for r in results):.2e} "
          f"domains_equal={all(r['domains_equal'] for r in results)} "
          f"round_trip_equal={all(r['round_trip_equal'] for r in results)}")


if __name__ == '__main__':
    main()
