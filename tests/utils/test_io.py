"""gm_plugins.utils.io: the one atomic writer of JSON, CSV and text."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gm_plugins.utils.io import (
    TEMPORARY_SUFFIX,
    atomic_path,
    remove_stale_temporaries,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)


def test_json_writes_numpy_torch_and_paths_as_plain_values(tmp_path):
    value = dict(
        scalar=np.float32(0.5),
        integer=np.int64(3),
        array=np.arange(3),
        tensor=torch.tensor([[1, 2]]),
        zero_d=torch.tensor(1.5),
        path=Path("a/b.pth"),
    )
    path = write_json_atomic(tmp_path / "sub" / "m.json", value)
    text = path.read_text()
    assert text.endswith("}\n") and text.startswith('{\n "scalar"')  # indent 1, newline
    assert json.loads(text) == dict(
        scalar=0.5, integer=3, array=[0, 1, 2], tensor=[[1, 2]], zero_d=1.5, path="a/b.pth"
    )


def test_json_names_a_value_it_cannot_write_and_leaves_no_file(tmp_path):
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        write_json_atomic(tmp_path / "m.json", dict(bad=object()))
    assert list(tmp_path.iterdir()) == []


def test_csv_rows_round_trip(tmp_path):
    path = write_csv_atomic(tmp_path / "t.csv", ["a", "b"], [[1, "x,y"], [2, ""]])
    assert path.read_bytes() == b'a,b\n1,"x,y"\n2,\n'
    with open(path, newline="") as handle:
        assert list(csv.DictReader(handle)) == [dict(a="1", b="x,y"), dict(a="2", b="")]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "report.md", "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed while writing")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_only_temporaries_of_ended_processes_are_removed(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f".a.json.{ended.stdout.strip()}-0123abcd{TEMPORARY_SUFFIX}"
    alive = tmp_path / f".b.json.{os.getpid()}-0123abcd{TEMPORARY_SUFFIX}"
    for path in (dead, alive):
        path.write_text("{")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert alive.exists() and not dead.exists()
