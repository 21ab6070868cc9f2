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
from tunit_nb.evaluation import DigitClassifier, evaluate, fit_digit_classifier, thumbnails, translation_accuracy

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


def test_report_files_and_json(digits, tmp_path):
    held, train = digits['held'], digits['train']
    out = tmp_path / 'run' / 'eval'                                  # created on demand
    report = evaluate(digits['model'], held.images, held.targets, k=10, out=out, classifier=digits['judge'],
                      extractor=thumbnail_features, train_images=train.images, train_targets=train.targets,
                      batch_size=100, max_fakes=40)
    assert set(report) == {'n_images', 'k', 'cluster_sizes', 'clustering_accuracy', 'nmi', 'ari',
                           'translation_accuracy', 'classifier_accuracy', 'fid_per_domain', 'mfid'}
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
    assert set(report) == {'n_images', 'k', 'cluster_sizes'}
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
