"""Logged commands and resumable stages: how every driver runs another process.

:func:`start_command` announces a command (``$ ...``, as a user would type it), runs it in a
child process and, with a log file, sends the child's output there; :func:`run_command` waits
for it and raises :class:`CommandError` with the end of the log. A :class:`Stage` is a command
with a marker file that records that it finished, so a rerun reuses it
(:func:`run_stage`, :func:`run_stages_in_parallel`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Lines of a failed command's log quoted in its error.
TAIL_LINES = 15


def python_command(script: str | os.PathLike, *args: object) -> list[str]:
    """``python SCRIPT ARGS`` with this interpreter (the venv's), every word a string."""
    return [sys.executable, str(script), *(str(arg) for arg in args)]


def module_command(module: str, *args: object) -> list[str]:
    """``python -m MODULE ARGS`` with this interpreter: how the drivers run the package's entry
    points (``gm_plugins.engine.train`` ...), wherever the package is installed."""
    return [sys.executable, "-m", module, *(str(arg) for arg in args)]


def threads_env(threads: int | None, override: bool = True) -> dict[str, str]:
    """This process's environment with ``threads`` BLAS/torch threads for a child.

    Args:
        threads: threads per child (None: the environment as it is).
        override: replace a thread count already set; False keeps the caller's setting.
    """
    env = dict(os.environ)
    if threads is not None:
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if override or variable not in env:
                env[variable] = str(threads)
    return env


def log_tail(log: str | os.PathLike, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    path = Path(log)
    if not path.is_file():
        return ""
    return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])


class CommandError(RuntimeError):
    """A command exited with a non-zero code; the message quotes the end of its log."""

    def __init__(
        self, what: str, command: Sequence[str], code: int, log: Path | None = None
    ) -> None:
        self.what, self.command, self.code, self.log = what, list(command), code, log
        detail = f"; log {log}:\n{log_tail(log)}" if log is not None else ""
        super().__init__(f"{what} failed (exit code {code}){detail}")


def start_command(
    command: Sequence[object],
    *,
    log: str | os.PathLike | None = None,
    append: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    announce: str | None = "",
) -> subprocess.Popen:
    """Start ``command``; its output goes to ``log`` (which gets the command line first).

    Args:
        log: file for the child's stdout and stderr (None: this process's streams).
        append: add to ``log`` instead of starting it afresh.
        announce: print ``<announce>$ <command>`` here first (None: print nothing).
    """
    words = [str(word) for word in command]
    line = f"$ {shlex.join(words)}"
    if announce is not None:
        print(f"{announce}{line}", flush=True)
    if log is None:
        return subprocess.Popen(words, cwd=cwd, env=env)
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a" if append else "w") as stream:
        stream.write(f"\n{line}\n" if append else f"{line}\n")
        stream.flush()
        return subprocess.Popen(words, cwd=cwd, env=env, stdout=stream, stderr=subprocess.STDOUT)


def wait_command(process: subprocess.Popen, what: str, log: str | os.PathLike | None) -> None:
    """Wait for a started command; raise :class:`CommandError` when it fails."""
    code = process.wait()
    if code != 0:
        raise CommandError(what, process.args, code, None if log is None else Path(log))


def run_command(
    command: Sequence[object],
    what: str,
    *,
    log: str | os.PathLike | None = None,
    append: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    announce: str | None = "",
) -> None:
    """Run ``command`` to its end (see :func:`start_command`); raise :class:`CommandError`."""
    process = start_command(command, log=log, append=append, env=env, cwd=cwd, announce=announce)
    wait_command(process, what, log)


@dataclass
class Stage:
    """One step of a driver: a command, the marker file that says it finished, its log."""

    name: str
    command: list[str]
    marker: Path | None = None
    log: Path | None = None
    seconds: float = 0.0
    reused: bool = False


def _start_stage(stage: Stage, env: Mapping[str, str] | None, cwd: str | os.PathLike | None):
    if stage.marker is not None and stage.marker.exists():
        stage.reused = True
        print(f"[{stage.name}] already done ({stage.marker.name}); reusing it", flush=True)
        return None
    stage.seconds = time.perf_counter()
    process = start_command(
        stage.command, log=stage.log, env=env, cwd=cwd, announce=f"[{stage.name}] "
    )
    if stage.log is not None:
        print(f"[{stage.name}] log: {stage.log}", flush=True)
    return process


def _finish_stage(stage: Stage, process: subprocess.Popen | None) -> None:
    if process is None:
        return
    wait_command(process, f"stage '{stage.name}'", stage.log)
    stage.seconds = time.perf_counter() - stage.seconds
    if stage.marker is not None:
        from .io import write_json_atomic

        write_json_atomic(stage.marker, dict(seconds=stage.seconds))
    print(f"[{stage.name}] done in {stage.seconds:.0f} s", flush=True)


def run_stage(
    stage: Stage, env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None
) -> None:
    """Run a stage unless its marker exists; write the marker (with its seconds) when done.

    Raises:
        CommandError: the stage's command failed (no marker is written).
    """
    _finish_stage(stage, _start_stage(stage, env, cwd))


def run_stages_in_parallel(
    stages: Sequence[Stage],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    report_every: float = 30.0,
) -> None:
    """Run stages side by side (each logs to its ``log``), printing their last log line now
    and then; each stage's marker records its own duration."""
    processes = [_start_stage(stage, env, cwd) for stage in stages]
    running = [i for i, process in enumerate(processes) if process is not None]
    last_report = time.perf_counter()
    while running:
        time.sleep(1)
        for i in [i for i in running if processes[i].poll() is not None]:
            running.remove(i)
            _finish_stage(stages[i], processes[i])
        if running and time.perf_counter() - last_report > report_every:
            last_report = time.perf_counter()
            for i in running:
                lines = log_tail(stages[i].log, 1).strip() if stages[i].log else ""
                print(f"[{stages[i].name}] {lines[:150] or 'starting'}", flush=True)
