"""Subject-level splits: stratified folds by infant, never splitting an infant (no OpenMMLab).

Folds are made once from (subject ids, labels, seed) with scikit-learn's ``StratifiedKFold``
on the subjects sorted by id, so the same inputs always give the same folds whatever order
the rows come in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from gm_plugins.utils.io import write_json_atomic


def stratified_subject_folds(
    subject_ids: Sequence[str], labels: Sequence[str], num_folds: int, seed: int
) -> dict[str, int]:
    """Assign every subject to one of ``num_folds`` folds, stratified by label.

    Returns:
        ``{subject_id: fold_index}``.
    """
    if len(set(subject_ids)) != len(subject_ids):
        raise ValueError("subject ids must be unique to make subject-level folds")
    order = np.argsort(np.asarray(subject_ids))
    ids = np.asarray(subject_ids)[order]
    classes = np.asarray(labels)[order]
    smallest = min(np.unique(classes, return_counts=True)[1])
    if num_folds < 2 or smallest < num_folds:
        raise ValueError(
            f"cannot make {num_folds} stratified folds: the rarest class has {smallest} "
            "subjects; use fewer folds or more subjects"
        )
    splitter = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    folds: dict[str, int] = {}
    for fold, (_, test_index) in enumerate(splitter.split(ids, classes)):
        folds.update({str(ids[i]): fold for i in test_index})
    return folds


def split_subjects(
    folds: dict[str, int], split: str, test_fold: int, val_fold: int | None = None
) -> list[str]:
    """Subjects of ``split`` ('train', 'val', 'test' or 'all') for one fold assignment.

    ``test_fold`` is held out for testing; ``val_fold`` (optional) for validation; every
    other fold trains. Returned ids are sorted.
    """
    num_folds = max(folds.values()) + 1
    for name, fold in (("test_fold", test_fold), ("val_fold", val_fold)):
        if fold is not None and not 0 <= fold < num_folds:
            raise ValueError(f"{name}={fold} is outside the {num_folds} folds (0..{num_folds - 1})")
    if val_fold is not None and val_fold == test_fold:
        raise ValueError(f"val_fold and test_fold are both {test_fold}; choose different folds")
    held_out = {"test": {test_fold}, "val": {val_fold}}
    if split == "all":
        chosen = set(folds)
    elif split in held_out:
        if split == "val" and val_fold is None:
            raise ValueError("split='val' needs a val_fold")
        chosen = {s for s, f in folds.items() if f in held_out[split]}
    elif split == "train":
        chosen = {s for s, f in folds.items() if f not in (test_fold, val_fold)}
    else:
        raise ValueError(f"split must be 'train', 'val', 'test' or 'all', got {split!r}")
    return sorted(chosen)


def save_folds(path: str | os.PathLike, folds: dict[str, int], seed: int) -> None:
    """Write folds as JSON (atomically), so every method of a comparison sees the same splits."""
    write_json_atomic(path, dict(seed=seed, folds=dict(sorted(folds.items()))))


def load_folds(path: str | os.PathLike) -> dict[str, int]:
    """Read folds written by :func:`save_folds`."""
    return {str(k): int(v) for k, v in json.loads(Path(path).read_text())["folds"].items()}
