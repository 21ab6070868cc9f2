"Data layer on real files: layouts, image modes, bad input. Files are generated in tmp_path."
import io, os, warnings
import numpy as np
import pytest
import torch
from PIL import Image

from tunit_nb.data import Digits, ImageFolder, UnreadableImageWarning, load_rgb, one_view
from tunit_nb.loading import DataOrder, ordered_loader


def _png(path, color=(200, 10, 10), size=(20, 20), mode='RGB'):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def test_labelled_layout_keeps_class_names(tmp_path):
    for c in ('cat', 'dog', 'owl'):
        for i in range(3): _png(tmp_path / c / f'{i}.png')
    ds = ImageFolder(tmp_path)
    assert ds.classes == ['cat', 'dog', 'owl']
    assert [ds.classes[t] for t in ds.targets] == [f.parent.name for f in ds.files]


def test_nested_unlabelled_layout(tmp_path):
    _png(tmp_path / 'a.png'); _png(tmp_path / 'x' / 'y' / 'b.PNG'); _png(tmp_path / 'x' / 'c.JpEg')
    ds = ImageFolder(tmp_path)
    assert len(ds) == 3 and ds.classes == [] and ds.targets.tolist() == [-1, -1, -1]


def test_extensions_any_case_and_hidden_files_ignored(tmp_path):
    _png(tmp_path / 'one.PNG'); _png(tmp_path / 'two.Jpg'); _png(tmp_path / '.hidden.png')
    (tmp_path / 'notes.txt').write_text('not an image')
    assert sorted(f.name for f in ImageFolder(tmp_path).files) == ['one.PNG', 'two.Jpg']


def test_missing_folder_names_path_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist') as e: ImageFolder(tmp_path / 'nope')
    assert 'nope' in str(e.value)


def test_file_instead_of_folder(tmp_path):
    with pytest.raises(NotADirectoryError, match='not a folder'): ImageFolder(_png(tmp_path / 'a.png'))


def test_folder_without_images_lists_extensions(tmp_path):
    (tmp_path / 'readme.txt').write_text('hi')
    with pytest.raises(FileNotFoundError) as e: ImageFolder(tmp_path)
    assert str(tmp_path) in str(e.value) and '.jpg' in str(e.value) and '.png' in str(e.value)


def test_fewer_images_than_a_batch(tmp_path):
    for i in range(3): _png(tmp_path / f'{i}.png')
    with pytest.raises(ValueError, match='fewer than one batch of 8') as e:
        DataOrder(len(ImageFolder(tmp_path, transform=one_view(32)))).take(8)
    assert 'at most 3' in str(e.value)


@pytest.mark.parametrize('mode,color', [('L', 90), ('P', 3), ('RGBA', (0, 0, 255, 255)), ('LA', (40, 255)),
                                        ('CMYK', (0, 255, 0, 0)), ('1', 1), ('RGB', (1, 2, 3))])
def test_every_mode_becomes_rgb(tmp_path, mode, color):
    path = tmp_path / f'img_{mode}.png'
    img = Image.new(mode, (9, 7), color)
    img.save(path.with_suffix('.jpg') if mode == 'CMYK' else path)
    out = load_rgb(path.with_suffix('.jpg') if mode == 'CMYK' else path)
    assert out.mode == 'RGB' and out.size == (9, 7)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    levels = np.linspace(0, 65535, 16, dtype=np.uint16).reshape(4, 4)
    Image.fromarray(levels).save(tmp_path / 'deep.png')
    out = np.asarray(load_rgb(tmp_path / 'deep.png'))[..., 0].astype(int)
    assert out.min() == 0 and out.max() == 255 and len(np.unique(out)) == 16


def test_transparency_composited_on_white(tmp_path):
    Image.new('RGBA', (4, 4), (0, 0, 0, 0)).save(tmp_path / 'clear.png')
    assert load_rgb(tmp_path / 'clear.png').getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_honoured(tmp_path):
    img = Image.new('RGB', (40, 20), (255, 0, 0))
    exif = Image.Exif(); exif[0x0112] = 6  # "rotate 90° clockwise to display"
    img.save(tmp_path / 'rotated.jpg', exif=exif)
    assert load_rgb(tmp_path / 'rotated.jpg').size == (20, 40)


def test_animated_gif_reads_first_frame(tmp_path):
    frames = [Image.new('P', (8, 8), i) for i in range(3)]
    frames[0].save(tmp_path / 'anim.gif', save_all=True, append_images=frames[1:])
    assert load_rgb(tmp_path / 'anim.gif').size == (8, 8)


def _bad_files(folder):
    "Zero bytes, not an image, truncated PNG: all fail the header check."
    (folder / 'empty.png').write_bytes(b'')
    (folder / 'text.jpg').write_text('this is not a jpeg')
    buf = io.BytesIO(); Image.new('RGB', (64, 64), (5, 6, 7)).save(buf, 'PNG')
    (folder / 'cut.png').write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def test_unreadable_files_skipped_with_one_counting_warning(tmp_path):
    for i in range(4): _png(tmp_path / f'good{i}.png')
    _bad_files(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ds = ImageFolder(tmp_path)
    assert len(ds) == 4
    msgs = [str(w.message) for w in caught if issubclass(w.category, UnreadableImageWarning)]
    assert len(msgs) == 1 and 'Skipped 3 unreadable' in msgs[0] and 'empty.png' in msgs[0]


def test_image_that_fails_only_when_decoded_is_replaced_mid_epoch(tmp_path):
    for i in range(4): _png(tmp_path / f'good{i}.png', size=(64, 64))
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, 'JPEG')
    (tmp_path / 'late.jpg').write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # header fine, data cut
    ds = ImageFolder(tmp_path, transform=one_view(32))
    assert len(ds) == 5  # passes the header check
    with pytest.warns(UnreadableImageWarning, match='late.jpg'):
        x, _ = next(iter(ordered_loader(ds, DataOrder(len(ds)), lambda it: 5)))
    assert x.shape == (5, 3, 32, 32) and torch.isfinite(x).all()


def test_folder_of_only_bad_files(tmp_path):
    _bad_files(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(FileNotFoundError, match='None of the 3 image files'): ImageFolder(tmp_path)
