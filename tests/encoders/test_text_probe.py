"""Text tower (tiny random model, never the MiniLM weights) and the ML-100k linear-probe protocol."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from graphrec.encoders import probe
from graphrec.encoders.probe import (
    age_bucket,
    linear_probe,
    majority_baseline,
    probe_folds,
    probe_table,
)


@pytest.fixture(scope="module")
def tiny():
    pytest.importorskip("sentence_transformers")
    import torch

    from graphrec.encoders.text import tiny_text_tower

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_text_tower(seed=0)
    torch.set_num_threads(old)


def _ml100k_folder() -> Path:
    root = os.environ.get("GRAPHREC_DATA")
    folder = Path(root or "/nonexistent") / "movielens" / "ml-100k"
    if not (folder / "u.user").is_file() or not (folder / "u.data").is_file():
        pytest.skip("GRAPHREC_DATA with movielens/ml-100k is not available")
    return folder


# ------------------------------------------------------------------------------ text tower
def test_tiny_tower_shape_zero_rows_and_determinism(tiny):
    texts = ["Toy Story (1995)", "", "GoldenEye (1995)", "   ", "toy story"]
    a = tiny.encode(texts)
    assert a.shape == (5, tiny.dim) and tiny.dim == 32 and a.dtype == np.float32
    assert not a[[1, 3]].any()  # empty and blank texts: zero vectors
    np.testing.assert_allclose(np.linalg.norm(a[[0, 2, 4]], axis=1), 1.0, atol=1e-5)
    assert not np.allclose(a[0], a[2])  # different texts, different vectors
    np.testing.assert_array_equal(tiny.encode(texts), a)  # same call, same bits
    # a text's vector does not depend on its neighbours in the list
    np.testing.assert_allclose(tiny.encode(["GoldenEye (1995)"])[0], a[2], atol=1e-5)
    assert tiny.encode([]).shape == (0, 32)


def test_tiny_tower_seeded_weights():
    pytest.importorskip("sentence_transformers")
    from graphrec.encoders.text import tiny_text_tower

    texts = ["Heat (1995)", "Fargo (1996)"]
    a = tiny_text_tower(seed=3, vocab="chars").encode(texts)
    np.testing.assert_array_equal(tiny_text_tower(seed=3, vocab="chars").encode(texts), a)
    assert not np.allclose(tiny_text_tower(seed=4, vocab="chars").encode(texts), a)


def test_tower_rejects_non_strings(tiny):
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        tiny.encode(["ok", None])


def test_local_folder_loads_offline_and_caches(tiny, tmp_path, monkeypatch):
    from graphrec.encoders.text import TextTower

    monkeypatch.setenv("GRAPHREC_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    tiny.model.save(str(folder))
    tower = TextTower(folder)
    texts = ["Toy Story (1995)", "", "Heat (1995)"]
    first = tower.encode(texts)
    np.testing.assert_allclose(first, tiny.encode(texts), atol=1e-5)  # same weights through the folder
    assert tower.cache_path(texts).is_file()

    def boom(*args, **kwargs):
        raise AssertionError("a cached text list must not reach the model")

    monkeypatch.setattr(tower.model, "encode", boom)
    np.testing.assert_array_equal(tower.encode(texts), first)
    with pytest.raises(AssertionError, match="cached"):  # a new list does reach the model
        tower.encode(texts + ["Fargo (1996)"])


def test_unknown_model_is_not_downloaded(tmp_path):
    pytest.importorskip("sentence_transformers")
    from graphrec.encoders.text import TextTower

    with pytest.raises(FileNotFoundError, match="offline"):
        TextTower("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        TextTower(str(tmp_path / "no-such-folder"))


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    from graphrec.encoders.text import TextTower, tiny_text_tower

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'graphrec\[text\]'"):
        TextTower("minilm")
    with pytest.raises(ImportError, match=r"graphrec\[text\]"):
        tiny_text_tower()


# ------------------------------------------------------------------------------ probe protocol
def test_probe_finds_planted_signal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    y = (X[:, 2] + 0.1 * rng.normal(size=300) > 0).astype(int)
    auc, _ = linear_probe(X, y, "auc")
    assert auc > 0.97
    y3 = np.digitize(X[:, 5], [-0.5, 0.5])
    assert linear_probe(X, y3, "accuracy")[0] > 0.85


def test_probe_is_at_chance_on_noise():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 4))
    auc, std = linear_probe(X, rng.integers(0, 2, size=1000), "auc")
    assert abs(auc - 0.5) < 0.06 and std > 0
    acc, _ = linear_probe(X, rng.integers(0, 3, size=1000), "accuracy")
    assert abs(acc - 1 / 3) < 0.06


def test_folds_are_stratified_and_partition_the_rows():
    y = np.repeat([0, 1, 2], [120, 60, 20])
    np.random.default_rng(1).shuffle(y)
    folds = probe_folds(y, folds=5, seed=0)
    assert len(folds) == 5
    tests = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tests), np.arange(y.size))  # every row held out exactly once
    for tr, te in folds:
        assert np.intersect1d(tr, te).size == 0
        np.testing.assert_array_equal(np.bincount(y[te], minlength=3), [24, 12, 4])
    assert not np.array_equal(folds[0][1], probe_folds(y, folds=5, seed=1)[0][1])  # seed shuffles


def test_majority_baseline_equals_the_class_prior():
    from sklearn.dummy import DummyClassifier

    rng = np.random.default_rng(2)
    y = (rng.random(250) < 0.3).astype(int)
    X0 = majority_baseline(250)
    acc, _ = linear_probe(X0, y, "accuracy")
    dummy = []
    for tr, te in probe_folds(y):
        clf = DummyClassifier(strategy="most_frequent").fit(X0[tr], y[tr])
        dummy.append(clf.score(X0[te], y[te]))
    assert acc == pytest.approx(np.mean(dummy))
    assert linear_probe(X0, y, "auc")[0] == pytest.approx(0.5)


def test_probe_input_errors():
    X = np.zeros((30, 2))
    with pytest.raises(ValueError, match="binary"):
        linear_probe(X, np.arange(30) % 3, "auc")
    with pytest.raises(ValueError, match="shape|expected"):
        linear_probe(X, np.arange(29) % 2)
    with pytest.raises(ValueError, match="class 2 has 3 samples"):
        probe_folds(np.r_[np.zeros(14), np.ones(13), 2 * np.ones(3)].astype(int))
    with pytest.raises(ValueError, match="task"):
        linear_probe(X, np.arange(30) % 2, "f1")
    with pytest.raises(ValueError, match="'bad'"):
        probe_table({"bad": np.zeros((10, 2))}, labels={"gender": np.zeros(30, int)})


def test_age_buckets_are_the_movielens_1m_groups():
    ages = np.array([7, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73])
    np.testing.assert_array_equal(age_bucket(ages), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6])


# ------------------------------------------------------------------------------ ML-100k
def test_ml100k_labels_match_the_raw_file():
    folder = _ml100k_folder()
    labels = probe.ml100k_user_labels(folder.parent.parent)
    rows = [line.split("|") for line in (folder / "u.user").read_text().splitlines()]
    assert len(rows) == 943
    np.testing.assert_array_equal(labels["user_id"], np.arange(1, 944))
    for key in ("gender", "age", "occupation"):
        assert labels[key].shape == (943,)
    # independent parse of u.user
    np.testing.assert_array_equal(labels["gender"], [r[2] == "F" for r in rows])
    np.testing.assert_array_equal(labels["age_years"], [int(r[1]) for r in rows])
    groups = [sum(int(r[1]) >= e for e in (18, 25, 35, 45, 50, 56)) for r in rows]
    np.testing.assert_array_equal(labels["age"], groups)
    assert np.bincount(labels["age"]).size == 7
    # the majority rates of the issue: 0.710 (gender), 0.329 (age, 25-34), 0.208 (occupation, student)
    assert 1 - labels["gender"].mean() == pytest.approx(670 / 943)
    assert np.bincount(labels["age"]).max() / 943 == pytest.approx(0.329, abs=5e-4)
    assert np.argmax(np.bincount(labels["age"])) == 2
    occ = np.bincount(labels["occupation"])
    assert occ.size == 21 and occ.max() / 943 == pytest.approx(0.208, abs=5e-4)
    assert labels["occupation_name"][labels["occupation"] == np.argmax(occ)][0] == "student"


def test_ml100k_baselines_probe_table():
    folder = _ml100k_folder()
    root = folder.parent.parent
    m = probe.ml100k_user_items(root)
    assert m.shape == (943, 1682) and m.nnz == 100_000 and set(np.unique(m.data)) == {1.0}
    labels = probe.ml100k_user_labels(root)
    svd = probe.svd_baseline(16, root=root)
    rows = probe_table({"majority": majority_baseline(), "svd-16": svd}, labels=labels, folds=3)
    maj, s = rows
    assert maj["gender_auc"] == pytest.approx(0.5) and maj["gender_acc"] == pytest.approx(0.710, abs=0.005)
    assert maj["age_acc"] == pytest.approx(0.329, abs=0.005)
    assert s["dim"] == 16 and s["gender_auc"] > 0.65 and s["age_acc"] > maj["age_acc"]


def test_ml100k_text_mean_baseline(tiny):
    root = _ml100k_folder().parent.parent
    m = probe.ml100k_user_items(root)
    text = probe.minilm_mean_baseline(tiny, root=root)
    assert text.shape == (943, tiny.dim) and text.dtype == np.float32
    # user 1's row is the mean of the vectors of the titles user 1 rated
    titles = probe.ml100k_item_titles(root)
    rated = m[0].indices
    np.testing.assert_allclose(text[0], tiny.encode([titles[i] for i in rated]).mean(axis=0), atol=1e-5)
