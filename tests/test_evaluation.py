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
