"""Sharing one job between processes: fixed shards and per-item claim files.

**Shards.** ``--shard I/N`` (I counts from 0: ``0/4``, ``1/4``, ``2/4``, ``3/4``) selects the items
whose :func:`shard_of` is I. The share depends only on the item's key (sha256 of its UTF-8 bytes,
modulo N), never on the order of a table, the machine or Python's randomised ``hash()``, so N
processes on one machine or on many agree on who does what without talking to each other. Shares
are only balanced on average: with few items one share may get a few more than another.

**Claims.** A :class:`ClaimBoard` keeps one claim file per item being worked on, ``FOLDER/
<prefix><key>``, created with ``os.open(O_CREAT | O_EXCL)``: of several processes that try at the
same time exactly one gets it. The file holds the holder's host name, process id, start time and a
random token (JSON). While a claim is held, a background thread touches it every
``refresh_seconds``, so its modification time says the holder is alive. Another process may take
a claim over when it is stale:

- *dead*: the holder ran on this host (same host name) and its process is gone;
- *expired*: the file was not touched for ``stale_seconds`` (a holder on another machine that
  died or hung, or a process id reused since).

A takeover moves the stale file aside (``rename``, atomic), checks that it moved the very file it
judged stale and, if a new holder's claim was moved instead, puts that one back. Only when three
processes meet in the same instant over a stale claim can two of them end up working on one item:
the work is then done twice, never corrupted, as long as each result is written atomically.

Network filesystems: ``O_EXCL`` creation is atomic on local filesystems, NFSv3 and later, Lustre,
GPFS and BeeGFS (not on NFSv2). Modification times come from the file server, and a holder on
another machine counts as alive until its file is ``stale_seconds`` old, so keep the machines'
clocks within a small fraction of it. Host names must tell the machines apart: two containers with
the same host name but separate process-id spaces must not share a folder with a short
``stale_seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gm_plugins.utils.io import is_running

STALE_SECONDS = 900.0
REFRESH_SECONDS = 60.0
#: How old an unreadable claim file (a holder killed while writing it) must be to count as stale.
UNREADABLE_GRACE_SECONDS = 60.0
BROKEN_PREFIX = ".claim-broken~"
SHARD_HELP = (
    "process only share I of N, I counted from 0 (0/4, 1/4, 2/4, 3/4); an item's share is fixed "
    "by a hash of its id, so N processes on one machine or many sharing the output folder split "
    "the work without overlap"
)
Item = TypeVar("Item")


def parse_shard(text: str) -> tuple[int, int]:
    """``'I/N'`` -> ``(I, N)`` with ``0 <= I < N``.

    Raises:
        ValueError: saying what is wrong and what to write instead.
    """
    index_text, slash, count_text = str(text).strip().partition("/")
    try:
        if not slash:
            raise ValueError
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ValueError(
            f"--shard {text!r}: write it as I/N with whole numbers, e.g. 0/4 for the first of "
            "four shares"
        ) from None
    if count < 1:
        raise ValueError(f"--shard {text!r}: N must be at least 1 (the number of shares)")
    if not 0 <= index < count:
        raise ValueError(
            f"--shard {text!r}: I counts from 0, so give 0 <= I < N (0/{count} ... "
            f"{count - 1}/{count})"
        )
    return index, count


def shard_argument(text: str) -> tuple[int, int]:
    """:func:`parse_shard` for ``argparse`` (its error becomes a usage error)."""
    try:
        return parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def format_shard(shard: tuple[int, int]) -> str:
    """``(I, N)`` -> ``'I/N'``."""
    return f"{shard[0]}/{shard[1]}"


def shard_of(key: str, count: int) -> int:
    """The share (0 ... count-1) of ``key``: sha256 of its UTF-8 bytes, modulo ``count``."""
    if count < 1:
        raise ValueError(f"count {count}: give at least 1 share")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def in_shard(key: str, index: int, count: int) -> bool:
    """Whether ``key`` belongs to share ``index`` of ``count``."""
    return shard_of(key, count) == index


def select_shard(
    items: Iterable[Item], shard: tuple[int, int] | None, key: Callable[[Item], str] = str
) -> list[Item]:
    """The items of share ``shard`` (all of them for None), in their order."""
    if shard is None:
        return list(items)
    index, count = shard
    return [item for item in items if in_shard(key(item), index, count)]


@dataclass(frozen=True)
class ClaimState:
    """What a claim file says and whether it may be taken over.

    ``state`` is ``'live'``, ``'dead'`` (holder on this host, process gone) or ``'expired'``
    (not touched for ``stale_seconds``).
    """

    key: str
    path: Path
    host: str | None
    pid: int | None
    started: float | None
    age: float
    state: str
    raw: bytes

    @property
    def stale(self) -> bool:
        return self.state != "live"

    def describe(self) -> str:
        """E.g. ``'live: host node7 pid 4242, touched 12 s ago'``."""
        holder = f"host {self.host} pid {self.pid}" if self.host else "unreadable claim file"
        why = {"dead": ", process gone", "expired": ", expired"}.get(self.state, "")
        return f"{self.state}: {holder}, touched {self.age:.0f} s ago{why}"


def host_name() -> str:
    """This machine's name as claims record it."""
    return socket.gethostname()


class ClaimBoard:
    """Claim files for items of a job in ``folder`` (see the module docstring).

    Args:
        folder: where the claim files go (created on the first claim).
        prefix: claim file name prefix; the key follows it. Keys must be valid file names.
        stale_seconds: a claim not touched for this long may be taken over.
        refresh_seconds: how often a held claim is touched.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        prefix: str = ".claim~",
        stale_seconds: float = STALE_SECONDS,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        if stale_seconds <= 0 or refresh_seconds <= 0:
            raise ValueError(
                f"stale_seconds {stale_seconds} / refresh_seconds {refresh_seconds}: give "
                "positive numbers"
            )
        self.folder = Path(folder)
        self.prefix = prefix
        self.stale_seconds = float(stale_seconds)
        self.refresh_seconds = min(float(refresh_seconds), self.stale_seconds / 4)
        self._held: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def path(self, key: str) -> Path:
        """The claim file of ``key``."""
        return self.folder / f"{self.prefix}{key}"

    def held(self) -> list[str]:
        """Keys this board holds now."""
        with self._lock:
            return sorted(self._held)

    def inspect(self, key: str) -> ClaimState | None:
        """The claim on ``key``, or None when there is none."""
        path = self.path(key)
        try:
            raw = path.read_bytes()
            modified = path.stat().st_mtime
        except FileNotFoundError:
            return None
        return self._judge(key, path, raw, time.time() - modified)

    def _judge(self, key: str, path: Path, raw: bytes, age: float) -> ClaimState:
        try:
            record = json.loads(raw)
            host, pid, started = str(record["host"]), int(record["pid"]), float(record["started"])
        except (ValueError, KeyError, TypeError):
            state = "expired" if age > UNREADABLE_GRACE_SECONDS else "live"
            return ClaimState(key, path, None, None, None, age, state, raw)
        if host == host_name() and not is_running(pid):
            state = "dead"
        elif age > self.stale_seconds:
            state = "expired"
        else:
            state = "live"
        return ClaimState(key, path, host, pid, started, age, state, raw)

    def acquire(self, key: str) -> bool:
        """Claim ``key``; False when another process holds a live claim on it.

        A stale claim is taken over. A claim this board already holds counts as acquired.
        """
        with self._lock:
            if key in self._held:
                return True
        path = self.path(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(4):
            record = dict(host=host_name(), pid=os.getpid(), started=time.time())
            raw = json.dumps(dict(record, token=uuid.uuid4().hex)).encode()
            try:
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                state = self.inspect(key)
                if state is not None and not state.stale:
                    return False
                if state is not None:
                    self._break(state)
                continue
            try:
                os.write(handle, raw)
                os.fsync(handle)
            finally:
                os.close(handle)
            with self._lock:
                self._held[key] = raw
            self._start_refreshing()
            return True
        return False

    def _break(self, state: ClaimState) -> bool:
        """Remove the stale claim ``state`` describes unless it was replaced meanwhile."""
        aside = self.folder / f"{BROKEN_PREFIX}{state.key}~{uuid.uuid4().hex[:8]}"
        try:
            os.rename(state.path, aside)
        except FileNotFoundError:
            return False  # someone else removed it first
        try:
            if aside.read_bytes() == state.raw:
                return True
            with contextlib.suppress(FileExistsError):  # a new holder's claim: put it back
                os.link(aside, state.path)
            return False
        finally:
            aside.unlink(missing_ok=True)

    def release(self, key: str) -> None:
        """Give up the claim on ``key`` (only if it is still this board's)."""
        with self._lock:
            raw = self._held.pop(key, None)
        if raw is None:
            return
        path = self.path(key)
        try:
            if path.read_bytes() == raw:
                path.unlink()
        except FileNotFoundError:
            pass

    def release_all(self) -> None:
        """Give up every claim this board holds and stop touching them."""
        for key in self.held():
            self.release(key)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def claims(self) -> list[ClaimState]:
        """Every claim in the folder, sorted by key."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob(f"{glob.escape(self.prefix)}*")):
            state = self.inspect(path.name[len(self.prefix) :])
            if state is not None:
                found.append(state)
        return found

    def clear_stale(self) -> list[str]:
        """Remove stale claims (and moved-aside leftovers); returns one line per removal."""
        removed = []
        for state in self.claims():
            if state.stale and self._break(state):
                removed.append(f"removed the stale claim on {state.key} ({state.describe()})")
        if self.folder.is_dir():
            for path in self.folder.glob(f"{glob.escape(BROKEN_PREFIX)}*"):
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - path.stat().st_mtime > UNREADABLE_GRACE_SECONDS:
                        path.unlink()
        return removed

    def _start_refreshing(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._refresh, name="claims", daemon=True)
            self._thread.start()

    def _refresh(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            with self._lock:
                held = list(self._held)
            for key in held:
                with contextlib.suppress(FileNotFoundError):
                    os.utime(self.path(key))

    def __enter__(self) -> ClaimBoard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release_all()
