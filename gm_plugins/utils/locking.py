"""One driver per work folder: an exclusive lock held for the driver's life.

A driver (cross-validation, backbone leaderboard, benchmark, shipped experiments) calls
:func:`lock_work_dir` before it writes anything; a second driver on the same folder is refused at
once with :class:`WorkDirInUseError`, which names the folder and the process that holds it. The lock
is ``flock`` on ``<work dir>/.gm_plugins.lock``, a file that also holds its owner's PID and
command line. The kernel releases the lock when its owner ends, however it ends, so a lock left
by a killed driver is taken over by the next one (the file's old content is overwritten).

A process that already holds a folder may lock it again (the lock is counted), and a child
process started by the holder (a driver running another driver in its folder) is let through:
it works for its parent. Where ``fcntl`` is missing (Windows) nothing is locked and
:data:`LOCKING` is False.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None

#: The lock file's name inside a work folder.
LOCK_NAME = ".gm_plugins.lock"
#: Whether work folders are locked on this system.
LOCKING = fcntl is not None


class WorkDirInUseError(RuntimeError):
    """Another running process holds the work folder."""

    def __init__(self, work_dir: Path, owner: dict) -> None:
        self.work_dir, self.owner = work_dir, owner
        pid = owner.get("pid", "?")
        command = owner.get("command") or "an unknown command"
        since = f" since {owner['started']}" if owner.get("started") else ""
        super().__init__(
            f"{work_dir} is in use by process {pid} ({command}){since}: wait for it to end, "
            f"stop it (kill {pid}) or give another work folder"
        )


@dataclass
class WorkDirLock:
    """A held lock on a work folder; :meth:`release` (or leaving a ``with`` block) frees it."""

    work_dir: Path
    path: Path
    descriptor: int | None
    count: int = 1
    owner: dict = field(default_factory=dict)

    def release(self) -> None:
        """Give the folder up (the last release of a lock taken several times)."""
        with _held_lock:
            self.count -= 1
            if self.count > 0 or self.descriptor is None:
                return
            _held.pop(self.path, None)
            os.close(self.descriptor)  # closing the file releases the flock
            self.descriptor = None

    def __enter__(self) -> WorkDirLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


_held: dict[Path, WorkDirLock] = {}
_held_lock = threading.Lock()


def read_owner(work_dir: str | os.PathLike) -> dict:
    """What the lock file of ``work_dir`` says about its last owner ({} when nothing)."""
    try:
        owner = json.loads((Path(work_dir) / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def lock_work_dir(work_dir: str | os.PathLike, command: str | None = None) -> WorkDirLock:
    """Hold ``work_dir`` (created if missing) for this process, or fail at once.

    Args:
        command: what the lock file names as its owner (default: this process's command line).

    Raises:
        WorkDirInUseError: another live process holds the folder (not this process's parent).
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    path = (work_dir / LOCK_NAME).resolve()
    with _held_lock:
        held = _held.get(path)
        if held is not None:
            held.count += 1
            return held
        if fcntl is None:
            return WorkDirLock(work_dir, path, None)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            owner = read_owner(work_dir)
            if owner.get("pid") == os.getppid():  # our parent holds it and runs us there
                return WorkDirLock(work_dir, path, None, owner=owner)
            raise WorkDirInUseError(work_dir, owner) from None
        owner = dict(
            pid=os.getpid(),
            command=command or shlex.join(sys.argv) or sys.executable,
            started=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(owner) + "\n").encode(), 0)
        lock = WorkDirLock(work_dir, path, descriptor, owner=owner)
        _held[path] = lock
        return lock
