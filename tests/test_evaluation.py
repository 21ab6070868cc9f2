"Clustering metrics against brute force: the Hungarian matching must find the best one-to-one matching."
import itertools

import numpy as np
from hypothesis import given, settings, strategies as st

from tunit_nb.evaluation import cluster_accuracy, cluster_metrics, confusion, match_clusters


def brute_force_accuracy(y_true, y_pred):
    "Best share of images in their class over every one-to-one cluster -> class matching (small cases only)."
    classes, clusters = sorted(set(y_true)), sorted(set(y_pred))
    best = 0
    for chosen in itertools.permutations(classes, min(len(classes), len(clusters))):
        for subset in itertools.combinations(clusters, len(chosen)):
            mapping = dict(zip(subset, chosen))
            best = max(best, sum(mapping.get(p) == t for t, p in zip(y_true, y_pred)))
    return best / len(y_true)


labels = st.integers(1, 40).flatmap(lambda n: st.tuples(st.lists(st.integers(0, 3), min_size=n, max_size=n),
                                                          st.lists(st.integers(0, 4), min_size=n, max_size=n)))


@settings(max_examples=200, deadline=None)
@given(labels)
def test_accuracy_equals_brute_force(pair):
    y_true, y_pred = pair
    assert np.isclose(cluster_accuracy(y_true, y_pred), brute_force_accuracy(y_true, y_pred))


@settings(max_examples=100, deadline=None)
@given(labels, st.permutations(range(5)))
def test_renaming_clusters_changes_nothing(pair, rename):
    y_true, y_pred = pair
    renamed = [rename[p] * 10 + 3 for p in y_pred]                  # any ids, not only 0..k-1
    before, after = cluster_metrics(y_true, y_pred), cluster_metrics(y_true, renamed)
    assert before.keys() == after.keys() and all(np.isclose(before[k], after[k]) for k in before)
    assert set(match_clusters(y_true, renamed)) <= {rename[p] * 10 + 3 for p in y_pred}


@settings(max_examples=100, deadline=None)
@given(labels)
def test_confusion_diagonal_is_the_matched_count(pair):
    y_true, y_pred = pair
    counts, classes, order, n_matched = confusion(y_true, y_pred)
    assert counts.sum() == len(y_true) and sorted(order.tolist()) == sorted(set(y_pred))
    mapping, row = match_clusters(y_true, y_pred), {c: i for i, c in enumerate(classes.tolist())}
    assert [mapping[k] for k in order[:n_matched].tolist()] == sorted(mapping.values())  # matched columns in class order
    matched = sum(counts[row[mapping[k]], j] for j, k in enumerate(order[:n_matched].tolist()))
    assert np.isclose(matched / len(y_true), cluster_accuracy(y_true, y_pred))


# ---- evaluate: the one evaluation path, its report files and JSON ----

import json

import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from tunit_nb.data import Digits
from tunit_nb.evaluation import (DigitClassifier, diversity, evaluate, fit_digit_classifier, pair_references, thumbnails,
                                 translation_accuracy)

PNG = b'\x89PNG\r\n\x1a\n'


class PixelModel:
    "Stand-in for a trained TUNIT: style = PCA of thumbnails, domain = k-means on them, translate = the reference."
    def __init__(self, train_images, k=10):
        pixels = thumbnails(train_images)
        self.pca, self.kmeans = PCA(8, random_state=0).fit(pixels), KMeans(k, n_init=3, random_state=0).fit(pixels)
    def style(self, x): return torch.from_numpy(self.pca.transform(thumbnails(x))).float()
    def domain(self, x): return torch.from_numpy(self.kmeans.predict(thumbnails(x)))
    def translate(self, x_src, x_ref): return x_ref


@pytest.fixture(scope='module')
def digits():
    torch.set_num_threads(1)
    train, held = Digits('train', size=16), Digits('heldout', size=16)
    return dict(train=train, held=held, model=PixelModel(train.images),
                judge=fit_digit_classifier(train.images, train.targets))


def thumbnail_features(x):   # a cheap, fixed FID extractor: (b, 16)
    return torch.from_numpy(thumbnails(x)).float() @ torch.linspace(-1, 1, 64 * 16).view(64, 16).sin()


def test_classifier_is_good_on_real_digits(digits):
    held = digits['held']
    assert digits['judge'].score(held.images, held.targets) >= 0.95
    assert isinstance(digits['judge'], DigitClassifier)


def test_translation_accuracy_with_stand_in_translators(digits):
    held, judge = digits['held'], digits['judge']
    copy_ref = translation_accuracy(lambda s, r: r, held.images, held.targets, judge)
    assert copy_ref['translation_accuracy'] == copy_ref['classifier_accuracy'] >= 0.95
    assert translation_accuracy(lambda s, r: s, held.images, held.targets, judge)['translation_accuracy'] <= 0.05


def test_per_domain_accuracy_exposes_one_broken_domain(digits):
    "A translator that fails into one domain only: the overall figure barely moves, the minimum shows it."
    held, judge = digits['held'], digits['judge']
    sevens = held.images[held.targets == 7][:1].float() / 127.5 - 1
    def broken(x_src, x_ref):   # the reference, except into 3s: then a 7
        is_three = torch.as_tensor(judge.predict(x_ref) == 3)
        return torch.where(is_three[:, None, None, None], sevens.expand_as(x_ref), x_ref)
    scores = translation_accuracy(broken, held.images, held.targets, judge)
    assert scores['translation_accuracy'] > 0.85 and scores['min_domain_accuracy'] <= 0.05
    assert min(scores['translation_accuracy_per_domain'], key=scores['translation_accuracy_per_domain'].get) == '3'
    wanted = held.targets[pair_references(held.targets, held.targets)].numpy()
    counts = {c: (wanted == int(c)).sum() for c in scores['translation_accuracy_per_domain']}
    weighted = sum(a * counts[c] for c, a in scores['translation_accuracy_per_domain'].items()) / len(wanted)
    assert np.isclose(weighted, scores['translation_accuracy'])


def test_content_accuracy_reads_the_source(digits):
    held, judge = digits['held'], digits['judge']
    other = torch.roll(held.targets, 1)                              # a second, unrelated labelling as "domains"
    keep = translation_accuracy(lambda s, r: s, held.images, other, judge, contents=held.targets, content_classifier=judge)
    lose = translation_accuracy(lambda s, r: r, held.images, other, judge, contents=held.targets, content_classifier=judge)
    assert keep['content_accuracy'] == keep['content_classifier_accuracy'] >= 0.95
    assert lose['content_accuracy'] < 0.2
    with pytest.raises(ValueError, match='one content class'):
        translation_accuracy(lambda s, r: s, held.images, other, judge, contents=held.targets[:5], content_classifier=judge)


@pytest.mark.parametrize('scale', [0.0, 0.25, 1.0])
def test_diversity_scales_with_what_survives_of_the_source(digits, scale):
    "Translation = the reference plus `scale` times (source - mean image): diversity is `scale` times that of the sources."
    held = digits['held']
    signed = held.images.float() / 127.5 - 1
    mean = signed.mean(0)
    got = diversity(lambda s, r: r + scale * (s - mean), held.images, held.targets, seed=3)
    sources_only = diversity(lambda s, r: s, held.images, held.targets, seed=3)
    assert np.isclose(got['diversity'], scale * sources_only['diversity'], atol=1e-9)
    assert set(got['diversity_per_domain']) == {str(c) for c in range(10)}


def test_report_files_and_json(digits, tmp_path):
    held, train = digits['held'], digits['train']
    out = tmp_path / 'run' / 'eval'                                  # created on demand
    report = evaluate(digits['model'], held.images, held.targets, k=10, out=out, classifier=digits['judge'],
                      extractor=thumbnail_features, train_images=train.images, train_targets=train.targets,
                      batch_size=100, max_fakes=40)
    assert set(report) == {'n_images', 'k', 'cluster_sizes', 'clustering_accuracy', 'nmi', 'ari', 'translation_accuracy',
                           'translation_accuracy_per_domain', 'min_domain_accuracy', 'classifier_accuracy',
                           'diversity', 'diversity_per_domain', 'fid_per_domain', 'mfid', 'fid_floor_per_domain', 'mfid_floor'}
    assert sorted(p.name for p in out.iterdir()) == ['confusion.png', 'report.json', 'translations.png', 'tsne.png']
    for name in ('confusion.png', 'translations.png', 'tsne.png'):
        assert (out / name).read_bytes()[:8] == PNG
    assert json.loads((out / 'report.json').read_text()) == report     # JSON-serialisable, nothing lost
    assert sum(report['cluster_sizes']) == len(held) and len(report['cluster_sizes']) == 10
    assert set(report['fid_per_domain']) == {str(c) for c in range(10)} and report['mfid'] >= 0
    assert 0.7 < report['clustering_accuracy'] <= 1 and report['translation_accuracy'] >= 0.95
    again = evaluate(digits['model'], held.images, held.targets, k=10, out=out, classifier=digits['judge'],
                     extractor=thumbnail_features, train_images=train.images, train_targets=train.targets,
                     batch_size=100, max_fakes=40)
    assert again == report                                            # seeded: reproducible, report overwritten
    assert not [p for p in out.iterdir() if p.name.endswith('.tmp')]


def test_without_labels_omits_label_metrics(digits, tmp_path):
    held = digits['held']
    report = evaluate(digits['model'], held.images, out=tmp_path, classifier=digits['judge'])
    assert 'clustering_accuracy' not in report and 'translation_accuracy' not in report and 'mfid' not in report
    assert set(report) == {'n_images', 'k', 'cluster_sizes', 'diversity', 'diversity_per_domain'}   # over pseudo-domains
    assert sorted(p.name for p in tmp_path.iterdir()) == ['report.json', 'translations.png', 'tsne.png']
    assert json.loads((tmp_path / 'report.json').read_text()) == report
    assert evaluate(digits['model'], held.images, torch.full((len(held),), -1)) == report


def test_partly_labelled_images_are_scored_on_their_labels(digits):
    held, model = digits['held'], digits['model']
    targets = held.targets.clone()
    targets[::3] = -1
    report = evaluate(model, held.images.float() / 127.5 - 1, targets)   # images in [-1, 1] work too
    known = targets >= 0
    expected = cluster_metrics(held.targets[known], model.domain(held.images)[known])
    assert all(report[key] == expected[key] for key in expected) and report['n_images'] == len(held)
