"""Atomic files: every file appears under its final name only once it is complete.

A temporary sibling (``.<name>.<pid>-<random>.tmp``) is written first and moved into place with
``os.replace``, so a killed run never leaves a half-written file that looks finished, and an old
file stays until its replacement is complete. The process id in the name lets a rerun delete the
temporaries of killed runs (:func:`remove_stale_temporaries`) without touching a live writer's.
This module is the one writer of JSON, CSV and text files in gm_plugins.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it to ``path`` when the block succeeds.

    The parent folder is created. The temporary is deleted whatever happens in the block.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unique also across threads of one process
    temporary = final.with_name(f".{final.name}.{tag}{TEMPORARY_SUFFIX}")
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode())


def json_default(value: object) -> object:
    """The JSON fallback for what ``json`` cannot write: numpy and torch values, paths.

    Numpy scalars become Python numbers, arrays and tensors nested lists, paths strings.

    Raises:
        TypeError: naming the type of any other value.
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: object, indent: int = 1) -> str:
    """``value`` as indented JSON text ending in a newline, numpy values as Python ones."""
    return json.dumps(value, indent=indent, default=json_default) + "\n"


def write_json_atomic(path: str | os.PathLike, value: object, indent: int = 1) -> Path:
    """Write ``value`` as indented JSON (see :func:`json_default`) atomically."""
    return write_text_atomic(path, to_json(value, indent))


def write_csv_atomic(
    path: str | os.PathLike, header: Iterable[str], rows: Iterable[Iterable]
) -> Path:
    """Write a header and rows as CSV (``\\n`` line ends) atomically."""
    buffer = io.StringIO()
    table = csv.writer(buffer, lineterminator="\n")
    table.writerow(list(header))
    table.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporaries under ``folder`` left by processes that no longer run (a killed run).

    Temporaries of a live process are kept; returns the deleted paths.
    """
    removed = []
    for path in Path(folder).rglob(f".*{TEMPORARY_SUFFIX}"):
        tag = path.name.removesuffix(TEMPORARY_SUFFIX).rpartition(".")[2]
        pid = tag.partition("-")[0]
        if pid.isdigit() and is_running(int(pid)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def is_running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie awaiting its reaper has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    try:  # Linux: a killed worker stays a zombie until its new parent reaps it, which can be slow
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # with /proc, a missing entry means reaped
    except (OSError, IndexError):
        return True
    return state != "Z"
