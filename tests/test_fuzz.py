"Bad input never crashes loading: folders mixing valid images with broken, odd and huge files (hypothesis)."
import io, tempfile, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from tunit_nb.data import ImageFolder, UnreadableImageWarning, one_view


def _encode(img, fmt, **kw):
    buf = io.BytesIO(); img.save(buf, fmt, **kw); return buf.getvalue()


def _rgb(rng, w, h):
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def make_file(kind, rng):
    "(bytes, extension, valid) for one kind of file."
    w, h = (int(v) for v in rng.integers(1, 40, 2))
    if kind == 'png': return _encode(_rgb(rng, w, h), 'PNG'), '.png', True
    if kind == 'jpeg': return _encode(_rgb(rng, w, h), 'JPEG'), '.jpg', True
    if kind == 'one_pixel': return _encode(_rgb(rng, 1, 1), 'PNG'), '.png', True
    if kind == 'gray16':
        return _encode(Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16)), 'PNG'), '.png', True
    if kind == 'cmyk': return _encode(_rgb(rng, w, h).convert('CMYK'), 'JPEG'), '.jpg', True
    if kind == 'palette': return _encode(_rgb(rng, w, h).convert('P'), 'PNG'), '.png', True
    if kind == 'rgba': return _encode(_rgb(rng, w, h).convert('RGBA'), 'PNG'), '.png', True
    if kind == 'animated':
        frames = [_rgb(rng, w, h).convert('P') for _ in range(3)]
        return _encode(frames[0], 'GIF', save_all=True, append_images=frames[1:]), '.gif', True
    if kind == 'random_bytes': return rng.integers(0, 256, int(rng.integers(1, 500)), dtype=np.uint8).tobytes(), '.png', False
    if kind == 'zero_bytes': return b'', '.jpg', False
    if kind == 'truncated_png': data = _encode(_rgb(rng, 30, 30), 'PNG'); return data[:len(data) // 2], '.png', None
    if kind == 'truncated_jpeg': data = _encode(_rgb(rng, 30, 30), 'JPEG'); return data[:len(data) // 2], '.jpg', None
    raise ValueError(kind)


KINDS = ['png', 'jpeg', 'one_pixel', 'gray16', 'cmyk', 'palette', 'rgba', 'animated', 'random_bytes', 'zero_bytes',
         'truncated_png', 'truncated_jpeg']


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=12), seed=st.integers(0, 2 ** 16),
       labelled=st.booleans())
def test_loading_never_crashes_and_counts_skipped_files(kinds, seed, labelled):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root, valid = Path(tmp), {}
        for i, kind in enumerate(kinds):
            data, ext, ok = make_file(kind, rng)
            path = root / (f'class{i % 2}' if labelled else '') / f'{i:02d}_{kind}{ext}'
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            valid[path] = ok
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            try: ds = ImageFolder(root, transform=one_view(32))
            except FileNotFoundError as e:        # no readable file at all: one clear error
                assert all(v is not True for v in valid.values()) and 'can be read' in str(e)
                return
            assert any(v is not False for v in valid.values())
            if all(v is not True for v in valid.values()) and all(valid[f] is None for f in ds.files):
                try: ds[0]                            # only truncated files: they may all fail to decode
                except ValueError as e:
                    assert 'can be decoded' in str(e)
                    return
            items = [ds[i][0] for i in range(len(ds))]
        assert len(ds.files) + len(ds.skipped) == len(kinds)                     # every file counted once
        assert all(valid[f] is not True for f in ds.skipped)                     # no valid image skipped
        assert all(valid[f] is not False for f in ds.files)                      # no garbage kept
        if ds.skipped:
            counted = [w for w in caught if w.category is UnreadableImageWarning and 'Skipped' in str(w.message)]
            assert f'Skipped {len(ds.skipped)} unreadable' in str(counted[0].message)
        for x in items:
            assert x.shape == (3, 32, 32) and torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1


def test_a_6000_by_4000_photo_loads_and_is_resized(tmp_path):
    Image.new('RGB', (6000, 4000), (30, 120, 200)).save(tmp_path / 'huge.jpg', quality=80)
    Image.new('RGB', (1, 1), (255, 0, 0)).save(tmp_path / 'tiny.png')
    ds = ImageFolder(tmp_path, transform=one_view(64))
    assert [tuple(ds[i][0].shape) for i in range(2)] == [(3, 64, 64)] * 2
