"Loading on real files: a folder decoded once (memory, cache file, memory map), the splits, batches in order."
import os, warnings
import pytest
import torch

from tunit_nb import loading
from tunit_nb.data import ImageFolder, UnreadableImageWarning, load_rgb, one_view
from tunit_nb.loading import DataOrder, decode_folder, get_dataset, images_of, ordered_loader
from test_data import _bad_files, _png


def test_folder_split_is_disjoint_stratified_and_seeded(tmp_path):
    for c in ('a', 'b'):
        for i in range(10): _png(tmp_path / c / f'{i}.png')
    tr, he = get_dataset(tmp_path, 'train', heldout=0.2), get_dataset(tmp_path, 'heldout', heldout=0.2)
    assert len(tr) == 16 and len(he) == 4 and not set(tr.files) & set(he.files)
    assert sorted(he.targets.tolist()) == [0, 0, 1, 1]
    loading._decoded.clear()                                     # decoded afresh, the split is the same
    assert get_dataset(tmp_path, 'heldout', heldout=0.2).files == he.files


def test_ordered_loader_workers_read_what_the_order_hands_out(tmp_path):
    "Worker processes read a folder's batches ahead, in the order's own sequence, across an epoch boundary and a batch-size change."
    for i in range(10): _png(tmp_path / f'{i}.png', color=(25 * i, 0, 0))
    folder = ImageFolder(tmp_path, transform=one_view(32))
    order, sizes = DataOrder(len(folder), seed=3), lambda it: 4 if it < 2 else 3
    read = iter(ordered_loader(folder, order, sizes, start=0, workers=2))
    for it in range(6):                                    # 10 images: epochs of 2 batches of 4, then of 3 batches of 3
        images, _ = next(read)
        assert torch.equal(images, images_of(folder, order.take(sizes(it)))[0]), it
    assert order.epoch >= 2


def test_decoded_folder_skips_bad_files_once_and_matches_the_files(tmp_path):
    for i in range(6): _png(tmp_path / 'a' / f'{i}.png', color=(40 * i, 0, 0), size=(40, 30))
    for i in range(6): _png(tmp_path / 'b' / f'{i}.jpg', color=(0, 40 * i, 0), size=(30, 40))
    _bad_files(tmp_path / 'b')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        decoded = decode_folder(tmp_path, 16, heldout=0.25)
    assert [w.category for w in caught] == [UnreadableImageWarning] and 'Skipped 3 unreadable' in str(caught[0].message)
    assert len(decoded) == 12 and decoded.classes == ['a', 'b'] and 8 <= decoded.n_train <= 11   # 11 of 15 minus bad ones
    for img, f in zip(decoded.images, decoded.files):          # what one_view gives, in uint8
        assert torch.allclose(img.float() / 127.5 - 1, one_view(16)(load_rgb(f)), atol=1e-6)
    assert [decoded.classes[t] for t in decoded.targets] == [f.parent.name for f in decoded.files]


def test_decoded_folder_of_only_bad_files(tmp_path):
    _bad_files(tmp_path)
    with pytest.raises(FileNotFoundError, match='None of the 3 image files'): decode_folder(tmp_path, 16)


def test_cache_file_is_used_then_rebuilt_when_the_folder_changes(tmp_path, monkeypatch):
    folder, cache = tmp_path / 'photos', tmp_path / 'run' / 'cache'
    for i in range(8): _png(folder / f'{i}.png', color=(30 * i, 10, 10))
    first = decode_folder(folder, 16, cache=cache)
    images, files = first.images.clone(), first.files
    del first
    with monkeypatch.context() as m:
        m.setattr(loading, '_decode_into', lambda *a, **k: pytest.fail('decoded the files again'))
        loading._decoded.clear()
        again = decode_folder(folder, 16, cache=cache)           # read from the file
        mapped = decode_folder(folder, 16, cache=cache, memory=0)  # memory-mapped from the file
    assert torch.equal(again.images, images) and again.files == files and not again.mapped
    assert torch.equal(mapped.images, images) and mapped.mapped
    _png(folder / '0.png', color=(255, 255, 255))                 # an image edited: the cache no longer fits
    os.utime(folder / '0.png', ns=(1, 1))                          # and dated long ago: the size and date differ
    changed = decode_folder(folder, 16, cache=cache)
    row = changed.files.index(folder / '0.png')
    assert (changed.images[row] == 255).all()
    assert len(list(cache.glob('*.u8'))) == 1 and len(list(cache.glob('*.json'))) == 1   # the stale cache is gone


def test_too_big_for_memory_is_memory_mapped_and_trains(tmp_path):
    "A folder over the memory budget: memory-mapped from the run's cache, and the trainer reads its batches from it."
    from tunit_nb.config import TrainConfig
    from tunit_nb.trainer import Trainer
    for i in range(40): _png(tmp_path / 'data' / f'{i}.png', color=(6 * i, 255 - 6 * i, 0))
    cfg = TrainConfig.preset('tiny', data=str(tmp_path / 'data'), image_memory=0.)
    train = get_dataset(cfg.data, 'train', size=32, cache=tmp_path / 'cache', memory=cfg.image_memory)
    assert train.mapped and train.images.dtype == torch.uint8
    trainer = Trainer(cfg, train)
    assert trainer.images.data_ptr() == train.images.data_ptr()   # the mapped pages themselves, nothing copied
    x = trainer.next_batch()
    assert x.dtype == torch.float32 and x.shape == (cfg.batch_at(0), 3, 32, 32) and -1 <= x.min() <= x.max() <= 1
