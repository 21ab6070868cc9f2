"The photograph folders, the k-means bar and the warm-up probe (tiny settings: their numbers mean nothing)."
import sys
import numpy as np
import pytest
import torch
from PIL import Image

from tunit_nb.config import TrainConfig
from tunit_nb.photos import crops, photo_folder, kmeans_on_pixels, warmup_probe, head_accuracies


def _two_colour_folder(root, n=30, size=16):
    "A folder of two classes that differ in colour only (red-ish and blue-ish noise)."
    rng = np.random.default_rng(0)
    for cls, channel in (('red', 0), ('blue', 2)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            img[..., channel] += 180
            Image.fromarray(img).save(root / cls / f'{i:03d}.png')
    return root


def test_crops_are_square_rgb_of_the_asked_size_and_follow_the_seed():
    grey = np.arange(100 * 80, dtype=np.uint8).reshape(100, 80) % 251
    a, b = (crops(grey, 4, 0.2, 0.5, 24, np.random.default_rng(3)) for _ in range(2))
    assert len(a) == 4 and all(c.size == (24, 24) and c.mode == 'RGB' for c in a)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    other = crops(grey, 4, 0.2, 0.5, 24, np.random.default_rng(4))
    assert not all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, other))


def test_photo_folder_names_the_choices_and_the_missing_package(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="choose from photos, textures, faces"): photo_folder('cats', tmp_path)
    monkeypatch.setitem(sys.modules, 'skimage', None)            # as if scikit-image were not installed
    monkeypatch.setitem(sys.modules, 'skimage.data', None)
    with pytest.raises(ImportError, match="pip install scikit-image"): photo_folder('faces', tmp_path)
    assert not (tmp_path / 'faces').exists()


def test_faces_folder_has_its_two_classes_and_is_built_once(tmp_path):
    pytest.importorskip('skimage')
    folder = photo_folder('faces', tmp_path)
    assert sorted(len(list(c.glob('*.png'))) for c in folder.iterdir() if c.is_dir()) == [100, 100]
    stamp = (folder / 'face' / '0000.png').stat().st_mtime_ns
    assert photo_folder('faces', tmp_path) == folder and (folder / 'face' / '0000.png').stat().st_mtime_ns == stamp


def test_kmeans_separates_two_colours(tmp_path):
    folder = _two_colour_folder(tmp_path / 'two')
    m = kmeans_on_pixels(folder, 2, size=16)
    assert m['clustering_accuracy'] == 1.0 and m['nmi'] == pytest.approx(1.0)


def test_warmup_probe_measures_every_head_and_needs_classes(tmp_path):
    folder = _two_colour_folder(tmp_path / 'two')
    cfg = TrainConfig.preset('tiny', data=str(folder), k=2, batch_size=4, warmup_batch_size=8)
    probe = warmup_probe(cfg, iters=4, every=2)
    assert probe['steps'] == [2, 4] and probe['accuracy'].shape == (2, cfg.n_heads)
    assert ((probe['accuracy'] >= 0.5) & (probe['accuracy'] <= 1)).all()
    held = probe['heldout']
    assert head_accuracies(probe['guiding'], held.images, held.targets) == list(probe['accuracy'][-1])
    (tmp_path / 'flat').mkdir()
    for i, f in enumerate(sorted((folder / 'red').glob('*.png'))[:10]): Image.open(f).save(tmp_path / 'flat' / f'{i}.png')
    with pytest.raises(ValueError, match="no class sub-folders"):
        warmup_probe(TrainConfig.preset('tiny', data=str(tmp_path / 'flat'), k=2), iters=2)
