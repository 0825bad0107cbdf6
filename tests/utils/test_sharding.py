"""gm_plugins.utils.sharding: fixed shares by a hash of the id, and claim files."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from gm_plugins.utils.sharding import (
    ClaimBoard,
    format_shard,
    host_name,
    in_shard,
    parse_shard,
    select_shard,
    shard_of,
)


@pytest.mark.parametrize(
    ("text", "expected"), [("0/1", (0, 1)), ("0/3", (0, 3)), ("2/3", (2, 3)), (" 7/8 ", (7, 8))]
)
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected
    assert format_shard(expected) == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/3", "I counts from 0"),
        ("-1/3", "I counts from 0"),
        ("0/0", "at least 1"),
        ("1/-2", "at least 1"),
        ("a/b", "whole numbers"),
        ("1", "I/N"),
        ("1/2/3", "whole numbers"),
        ("", "I/N"),
        ("1.0/2", "whole numbers"),
    ],
)
def test_bad_shards_name_the_fix(text, message):
    with pytest.raises(ValueError, match=message) as caught:
        parse_shard(text)
    assert repr(text) in str(caught.value)


def test_the_share_is_sha256_of_the_id_not_pythons_hash():
    for key in ("s0000", "infant_007", "ü-ß", ""):
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        assert shard_of(key, 7) == int(digest[:16], 16) % 7
    assert [shard_of(f"s{i}", 3) for i in range(6)] == [2, 0, 1, 2, 0, 2]  # fixed for good


def test_shares_split_the_items_without_overlap_and_keep_their_order():
    keys = [f"s{i:04d}" for i in range(300)]
    shares = [select_shard(keys, (index, 4)) for index in range(4)]
    assert sorted(key for share in shares for key in share) == keys
    assert all(share == sorted(share) for share in shares)
    assert all(50 < len(share) < 100 for share in shares)  # balanced on average
    assert all(in_shard(key, index, 4) for index, share in enumerate(shares) for key in share)
    assert select_shard(keys, None) == keys
    rows = [dict(subject_id=key) for key in keys]
    assert [r["subject_id"] for r in select_shard(rows, (1, 4), key=lambda r: r["subject_id"])] == (
        shares[1]
    )


def test_a_claim_is_exclusive_until_released(tmp_path):
    first, second = ClaimBoard(tmp_path / "c"), ClaimBoard(tmp_path / "c")
    assert first.acquire("s1")
    assert first.acquire("s1")  # held already
    assert not second.acquire("s1")
    record = json.loads((tmp_path / "c" / ".claim~s1").read_text())
    assert record["host"] == host_name() and record["pid"] == os.getpid()
    state = second.inspect("s1")
    assert state.state == "live" and not state.stale and "live: host" in state.describe()
    first.release("s1")
    assert not (tmp_path / "c" / ".claim~s1").exists()
    assert second.acquire("s1")
    first.release("s1")  # not first's any more: second's claim stays
    assert (tmp_path / "c" / ".claim~s1").exists()
    second.release_all()
    assert list((tmp_path / "c").iterdir()) == []


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _write_claim(path, host, pid, age=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(host=host, pid=pid, started=time.time() - age, token="x")))
    os.utime(path, (time.time() - age, time.time() - age))


def test_stale_claims_are_taken_over_live_ones_are_not(tmp_path):
    board = ClaimBoard(tmp_path, stale_seconds=100)
    _write_claim(tmp_path / ".claim~dead", host_name(), _dead_pid())
    _write_claim(tmp_path / ".claim~old", "elsewhere", 1, age=200)
    _write_claim(tmp_path / ".claim~remote", "elsewhere", 1, age=50)
    _write_claim(tmp_path / ".claim~mine", host_name(), os.getpid(), age=50)
    (tmp_path / ".claim~garbled").write_text("{")
    assert board.inspect("dead").state == "dead"
    assert board.inspect("old").state == "expired"
    assert board.inspect("remote").state == "live"  # another machine: only its age tells
    assert board.inspect("garbled").state == "live"  # perhaps being written this instant
    os.utime(tmp_path / ".claim~garbled", (time.time() - 100, time.time() - 100))
    assert board.inspect("garbled").state == "expired"
    assert board.inspect("nothing") is None
    assert board.acquire("dead") and board.acquire("old")
    assert not board.acquire("remote")
    assert json.loads((tmp_path / ".claim~dead").read_text())["pid"] == os.getpid()
    board.release_all()
    removed = ClaimBoard(tmp_path, stale_seconds=100).clear_stale()
    assert [line.split()[5] for line in removed] == ["garbled"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".claim~mine", ".claim~remote"]


def test_a_takeover_never_removes_a_claim_made_after_the_stale_one_was_seen(tmp_path):
    board = ClaimBoard(tmp_path, stale_seconds=100)
    _write_claim(tmp_path / ".claim~s1", host_name(), _dead_pid())
    stale = board.inspect("s1")
    (tmp_path / ".claim~s1").unlink()  # meanwhile another process took it over ...
    assert ClaimBoard(tmp_path).acquire("s1")  # ... and holds a fresh claim
    fresh = (tmp_path / ".claim~s1").read_bytes()
    assert not board._break(stale)
    assert (tmp_path / ".claim~s1").read_bytes() == fresh
    assert sorted(p.name for p in tmp_path.iterdir()) == [".claim~s1"]


def test_held_claims_are_refreshed(tmp_path):
    board = ClaimBoard(tmp_path, stale_seconds=0.4)  # refreshed every 0.1 s
    assert board.acquire("s1")
    os.utime(tmp_path / ".claim~s1", (time.time() - 1000, time.time() - 1000))
    deadline = time.monotonic() + 30
    while board.inspect("s1").stale:  # until the refresher has touched it
        assert time.monotonic() < deadline, "the held claim was never refreshed"
        time.sleep(0.01)
    assert board.inspect("s1").age < 0.4
    board.release_all()


def _grab(args):
    folder, keys = args
    board = ClaimBoard(folder)
    return os.getpid(), [key for key in keys if board.acquire(key)]  # kept: the process ends


def test_processes_racing_for_the_same_items_get_each_exactly_once(tmp_path):
    keys = [f"s{i:03d}" for i in range(200)]
    pool = multiprocessing.get_context("fork").Pool(4)
    results = pool.map(_grab, [(tmp_path, keys if i % 2 else keys[::-1]) for i in range(4)])
    pool.close()
    pool.join()  # every worker has ended (and been reaped): its claims are stale
    won = [key for _, got in results for key in got]
    assert sorted(won) == keys  # every item once, none twice
    assert sum(bool(got) for _, got in results) >= 2  # they did race
    removed = ClaimBoard(tmp_path).clear_stale()  # their processes ended: all stale
    assert len(removed) == len(keys) and list(tmp_path.iterdir()) == []


def test_bad_stale_seconds(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        ClaimBoard(tmp_path, stale_seconds=0)
