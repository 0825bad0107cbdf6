import pytest

from gm_plugins.datasets.folds import (
    load_folds,
    save_folds,
    split_subjects,
    stratified_subject_folds,
)


def make_subjects(per_class: int = 5):
    ids = [f"s{i:03d}" for i in range(3 * per_class)]
    labels = [("WMs", "FMs", "PR")[i % 3] for i in range(3 * per_class)]
    return ids, labels


def test_folds_are_stratified_and_cover_every_subject():
    ids, labels = make_subjects()
    folds = stratified_subject_folds(ids, labels, num_folds=5, seed=1)
    assert set(folds) == set(ids)
    for fold in range(5):
        members = [labels[ids.index(s)] for s, f in folds.items() if f == fold]
        assert sorted(members) == ["FMs", "PR", "WMs"]


def test_folds_do_not_depend_on_row_order_and_change_with_seed():
    ids, labels = make_subjects()
    folds = stratified_subject_folds(ids, labels, 5, seed=1)
    reversed_folds = stratified_subject_folds(ids[::-1], labels[::-1], 5, seed=1)
    assert folds == reversed_folds
    assert stratified_subject_folds(ids, labels, 5, seed=2) != folds


def test_splits_partition_subjects_without_overlap():
    ids, labels = make_subjects()
    folds = stratified_subject_folds(ids, labels, 5, seed=0)
    train = split_subjects(folds, "train", test_fold=0, val_fold=1)
    val = split_subjects(folds, "val", test_fold=0, val_fold=1)
    test = split_subjects(folds, "test", test_fold=0, val_fold=1)
    assert not set(train) & set(test) and not set(train) & set(val) and not set(val) & set(test)
    assert sorted(train + val + test) == sorted(ids)
    assert len(test) == len(val) == 3


def test_bad_fold_requests_are_explained():
    ids, labels = make_subjects(per_class=2)
    with pytest.raises(ValueError, match="rarest class has 2"):
        stratified_subject_folds(ids, labels, 5, seed=0)
    folds = stratified_subject_folds(ids, labels, 2, seed=0)
    with pytest.raises(ValueError, match="outside the 2 folds"):
        split_subjects(folds, "test", test_fold=3)
    with pytest.raises(ValueError, match="both 1"):
        split_subjects(folds, "train", test_fold=1, val_fold=1)
    with pytest.raises(ValueError, match="split must be"):
        split_subjects(folds, "holdout", test_fold=0)


def test_folds_round_trip_through_a_file(tmp_path):
    ids, labels = make_subjects()
    folds = stratified_subject_folds(ids, labels, 5, seed=3)
    save_folds(tmp_path / "folds.json", folds, seed=3)
    assert load_folds(tmp_path / "folds.json") == folds
