"FID and mFID: the Fréchet distance against closed forms, the InceptionV3 wiring without any download, the missing-weights error, fetching the weights (from a file:// address), mFID end to end on digits."
import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tunit_nb.data import Digits
from tunit_nb.fid import (FID_WEIGHTS_FILE, FID_WEIGHTS_HASH, FID_WEIGHTS_URL, InceptionFeatures, _fid_state_dict,
                                 default_fid_weights, fetch_fid_weights, fid, fid_features, frechet_distance, mfid)
from tolerance import assert_within, sum_gap

torch.set_num_threads(1)   # tiny tensors on a shared CPU: more threads only contend


@pytest.fixture
def no_network(monkeypatch):
    "Any attempt to open a connection (a weights download) fails the test at once instead of hanging."
    def refuse(*args, **kwargs): raise AssertionError("a network connection was attempted")
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    "torch's hub cache pointed at an empty folder, restored afterwards."
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    yield tmp_path / 'hub'
    torch.hub.set_dir(old)


# ---- Fréchet distance against closed forms ----

def white(n, d, seed):
    "n samples with mean exactly 0 and sample covariance exactly I."
    z = np.random.default_rng(seed).normal(size=(n, d))
    z -= z.mean(0)
    return z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T


def test_identical_sets_are_at_distance_zero():
    x = np.random.default_rng(0).normal(size=(300, 8)) @ np.random.default_rng(1).normal(size=(8, 8))
    assert abs(frechet_distance(x, x)) < 1e-6
    assert abs(frechet_distance(torch.tensor(x), x[::-1].copy())) < 1e-6      # order and type do not matter


@pytest.mark.parametrize('d', [2, 3, 10])
def test_shifted_means_give_squared_shift(d):
    z = white(200, d, d)
    shift = np.random.default_rng(d).normal(size=d) * 3
    assert np.isclose(frechet_distance(z, z + shift), (shift ** 2).sum(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('seed', range(5))
def test_diagonal_covariances_closed_form(seed):
    rng = np.random.default_rng(seed)
    d = 7
    var_a, var_b = rng.uniform(0.1, 4, d), rng.uniform(0.1, 4, d)
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    a = white(300, d, 10 + seed) * np.sqrt(var_a) + mu_a
    b = white(250, d, 20 + seed) * np.sqrt(var_b) + mu_b
    expected = ((mu_a - mu_b) ** 2).sum() + (var_a + var_b - 2 * np.sqrt(var_a * var_b)).sum()
    assert np.isclose(frechet_distance(a, b), expected, rtol=1e-6)


def test_independent_coordinates_add_up():
    "With independent coordinates each one adds (m1 - m2)^2 + (s1 - s2)^2, s the standard deviations."
    a, b = white(100, 2, 0) * [2, 1] + [1, 0], white(80, 2, 1) * [0.5, 3] + [-2, 1]
    assert np.isclose(frechet_distance(a, b), (3 ** 2 + 1.5 ** 2) + (1 ** 2 + 2 ** 2))


def test_full_covariances_rotation_invariant_and_symmetric():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    b = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 1
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert np.isclose(frechet_distance(a @ rotation, b @ rotation), frechet_distance(a, b), rtol=1e-6)
    assert np.isclose(frechet_distance(a, b), frechet_distance(b, a), rtol=1e-6)


def test_bad_feature_sets():
    with pytest.raises(ValueError, match='at least two'): frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match='feature sizes differ'): frechet_distance(np.ones((4, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match='two dimensions'): frechet_distance(np.ones((4, 1)), np.zeros((4, 1)))


# ---- InceptionV3 wiring, no download ----

def test_inception_random_weights_without_download(no_network, empty_hub):
    extractor = InceptionFeatures(pretrained=False)
    images = torch.rand(3, 3, 40, 40) * 2 - 1
    feats = extractor(images)
    assert feats.shape == (3, 2048) and torch.isfinite(feats).all()
    assert not extractor.train().training                       # stays a fixed instrument
    assert not any(p.requires_grad for p in extractor.parameters())


def test_inception_input_handling_is_pytorch_fids_standard(no_network):
    "[-1, 1] images -> [0, 1] once; pytorch-fid then resizes to 299 and maps to [-1, 1]: no double normalisation."
    extractor = InceptionFeatures(pretrained=False)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    x = F.interpolate((images + 1) / 2, size=(299, 299), mode='bilinear', align_corners=False) * 2 - 1
    with torch.no_grad():
        for block in extractor.net.blocks: x = block(x)
        assert torch.allclose(extractor(images), x.flatten(1), rtol=1e-5, atol=1e-12)
    grey, seen = images[:, :1], []                               # one channel is repeated to three
    extractor.net.forward = lambda x: (seen.append(x), [x])[1]   # what the network is given
    extractor(grey); extractor(grey.expand(-1, 3, -1, -1))
    assert seen[0].shape == seen[1].shape == (2, 3, 32, 32) and torch.equal(seen[0], seen[1])


def test_weights_from_file_and_from_hub_cache(no_network, empty_hub, tmp_path):
    state_dict = _fid_state_dict(pretrained=False)
    path = default_fid_weights()
    assert path == empty_hub / 'checkpoints' / FID_WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    torch.save(state_dict, path)
    explicit = tmp_path / 'elsewhere.pth'
    torch.save(state_dict, explicit)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        from_hub, from_file = InceptionFeatures()(images), InceptionFeatures(fid_weights=explicit)(images)
        other = InceptionFeatures(pretrained=False)(images)     # different random weights
    assert torch.equal(from_hub, from_file)
    assert not torch.allclose(from_hub, other)
    loaded = InceptionFeatures(fid_weights=str(explicit)).net.blocks[0][0].conv.weight
    assert torch.equal(loaded, state_dict['Conv2d_1a_3x3.conv.weight'])


# ---- the missing-weights error ----

def test_missing_weights_message_names_path_and_url(no_network, empty_hub):
    with pytest.raises(FileNotFoundError) as error: InceptionFeatures()
    message = str(error.value)
    assert str(empty_hub / 'checkpoints' / FID_WEIGHTS_FILE) in message
    assert FID_WEIGHTS_URL in message and FID_WEIGHTS_URL.startswith('https://')
    assert 'fid_weights=' in message and '--fid-weights' in message and 'feature extractor' in message


def test_missing_weights_under_torch_home(no_network, tmp_path, monkeypatch):
    "With TORCH_HOME set (and no explicit hub dir) the message names $TORCH_HOME/hub/checkpoints/..."
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'torch_home' / 'hub' / 'checkpoints' / FID_WEIGHTS_FILE)):
        InceptionFeatures()


def test_missing_explicit_weights_file(no_network, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'): InceptionFeatures(fid_weights=tmp_path / 'nowhere.pth')


# ---- fetching the weights: file:// addresses take torch.hub's download path, no network needed ----

def served_weights(tmp_path):
    "Random Inception weights saved where a file:// URL can reach them: (url, SHA-256 prefix of the file)."
    import hashlib
    served = tmp_path / 'server' / 'weights.pth'
    served.parent.mkdir()
    torch.save(_fid_state_dict(pretrained=False), served)
    return served.as_uri(), hashlib.sha256(served.read_bytes()).hexdigest()[:8]


def test_fetch_into_the_hub_cache_and_load(no_network, empty_hub, tmp_path):
    url, prefix = served_weights(tmp_path)
    assert FID_WEIGHTS_HASH == '6726825d' and FID_WEIGHTS_HASH in FID_WEIGHTS_FILE
    path = fetch_fid_weights(url=url, hash_prefix=prefix, progress=False)
    assert path == default_fid_weights() and path.is_file()
    assert torch.equal(InceptionFeatures().net.blocks[0][0].conv.weight,
                       torch.load(path, weights_only=True)['Conv2d_1a_3x3.conv.weight'])
    assert fetch_fid_weights(url='file:///nowhere', hash_prefix='0' * 8) == path     # present: not fetched again
    assert sorted(p.name for p in path.parent.iterdir()) == [FID_WEIGHTS_FILE]      # no temporary file left


@pytest.mark.parametrize('what', ['wrong hash', 'unreachable'])
def test_fetch_failure_names_the_place_and_leaves_nothing(no_network, empty_hub, tmp_path, what):
    url, prefix = served_weights(tmp_path)
    if what == 'wrong hash': prefix = 'f' * 8 if prefix != 'f' * 8 else 'e' * 8
    else: url = (tmp_path / 'server' / 'gone.pth').as_uri()
    with pytest.raises(OSError) as error: fetch_fid_weights(url=url, hash_prefix=prefix, progress=False)
    message = str(error.value)
    assert str(default_fid_weights()) in message and url in message and '--fid-weights' in message
    assert ('invalid hash value' in message) == (what == 'wrong hash')
    assert not default_fid_weights().exists() and not any(default_fid_weights().parent.iterdir())


def test_fetch_restores_the_socket_timeout(no_network, empty_hub, tmp_path):
    before = socket.getdefaulttimeout()
    with pytest.raises(OSError): fetch_fid_weights(url=(tmp_path / 'gone').as_uri(), timeout=3)
    assert socket.getdefaulttimeout() == before


# ---- mFID end to end on digits ----

PROJECTION = torch.randn(64, 16, generator=torch.Generator().manual_seed(0)) / 8


def thumbnail_features(x):
    "A fixed extractor: grey 8x8 thumbnails on 16 random directions."
    return F.adaptive_avg_pool2d(x.mean(1, keepdim=True), 8).flatten(1) @ PROJECTION   # (b, 16)


def among(images, pool):
    "Whether each image equals some image of the pool, exactly."
    return (images.flatten(1)[:, None] == pool.flatten(1)[None]).all(-1).any(1)


@pytest.fixture(scope='module')
def digits():
    return Digits('train', size=16), Digits('heldout', size=16)


def run(translate, digits, **kwargs):
    train, held = digits
    return mfid(translate, train.images, train.targets, held.images, held.targets, thumbnail_features, **kwargs)


def test_reference_beats_source_beats_noise(digits):
    scores = {name: run(t, digits) for name, t in [
        ('reference', lambda x_src, x_ref: x_ref), ('source', lambda x_src, x_ref: x_src),
        ('noise', lambda x_src, x_ref: torch.rand_like(x_src) * 2 - 1)]}
    for s in scores.values():
        assert set(s['fid_per_domain']) == set(range(10))
        assert np.isclose(s['mfid'], np.mean(list(s['fid_per_domain'].values())))
    assert scores['reference']['mfid'] < scores['source']['mfid'] / 5 < scores['noise']['mfid'] / 5


def test_protocol_sources_and_references(digits):
    "Domain k's fakes: every held-out image of the other domains once as source, each with a held-out reference of domain k."
    train, held = digits
    held_float = held.images.float() / 127.5 - 1
    calls = []
    def translate(x_src, x_ref):
        calls.append((x_src, x_ref))
        return x_ref
    result = run(translate, digits, batch_size=64)
    per_domain = {}
    for k in range(10):                                         # domains are visited in sorted order
        n_sources = int((held.targets != k).sum())
        batches = []
        while sum(len(s) for s, _ in batches) < n_sources: batches.append(calls.pop(0))
        per_domain[k] = batches
        sources, refs = torch.cat([s for s, _ in batches]), torch.cat([r for _, r in batches])
        assert torch.equal(sources, held_float[held.targets != k])
        assert among(refs, held_float[held.targets == k]).all()
        pool = held_float[held.targets == k].flatten(1)
        assert len(torch.unique(refs.flatten(1), dim=0)) == len(torch.unique(pool, dim=0))  # every reference used
    assert not calls and set(result['fid_per_domain']) == set(range(10))


def test_seeded_and_capped(digits):
    reference = lambda x_src, x_ref: x_ref
    assert run(reference, digits, seed=1) == run(reference, digits, seed=1)
    assert run(reference, digits, seed=1) != run(reference, digits, seed=2)
    sizes = []
    def translate(x_src, x_ref):
        sizes.append(len(x_src))
        return x_ref
    run(translate, digits, max_fakes=30, batch_size=64)
    assert sum(sizes) == 10 * 30


def test_pseudo_domains_and_missing_heldout_domain(digits):
    "Arbitrary domain ids; a domain without held-out images takes references from its training images."
    train, held = digits
    train_domains, held_domains = train.targets * 7 + 3, held.targets * 7 + 3
    keep = held.targets != 0
    refs_seen = []
    def translate(x_src, x_ref):
        refs_seen.append(x_ref)
        return x_ref
    result = mfid(translate, train.images, train_domains, held.images[keep], held_domains[keep], thumbnail_features,
                  batch_size=500)
    assert set(result['fid_per_domain']) == {k * 7 + 3 for k in range(10)}
    train_zeros = train.images[train.targets == 0].float() / 127.5 - 1
    assert among(refs_seen[0], train_zeros).all()


def test_tiny_domain_is_skipped_with_a_warning(digits):
    train, held = digits
    domains = train.targets.clone()
    domains[domains == 5] = 11
    domains[torch.nonzero(domains == 11)[1:, 0]] = 4            # domain 11 keeps a single training image
    with pytest.warns(UserWarning, match='domain 11'):
        result = mfid(lambda x_src, x_ref: x_ref, train.images, domains, held.images, held.targets, thumbnail_features)
    assert 11 not in result['fid_per_domain'] and len(result['fid_per_domain']) == 9


def test_fid_features_batching_and_dtypes(digits):
    _, held = digits
    a = fid_features(held.images, thumbnail_features, batch_size=7)
    b = fid_features(held.images.float() / 127.5 - 1, thumbnail_features, batch_size=1000)
    assert a.shape == (len(held), 16) and a.dtype == np.float64
    # other batch shapes: sums of 3 (channels), 16 (pixels) and 64 (projection) terms rounded in other orders
    magnitude = F.adaptive_avg_pool2d((held.images.float() / 127.5 - 1).abs().mean(1, keepdim=True), 8).flatten(1) @ PROJECTION.abs()
    assert_within(torch.from_numpy(a), torch.from_numpy(b), sum_gap(3 + 16 + 64, magnitude), 'features')
    assert fid(held.images, held.images, thumbnail_features) < 1e-6
