"""Logged commands and resumable stages: how every driver runs another process.

:func:`start_command` announces a command (``$ ...``, as a user would type it), runs it in a
child process and, with a log file, sends the child's output there; :func:`run_command` waits
for it and raises :class:`CommandError` with the end of the log. A :class:`Stage` is a command
with a marker file that records that it finished, so a rerun reuses it
(:func:`run_stage`, :func:`run_stages_in_parallel`).

Children die with their driver. On Linux every child is started in its own process group and
asks the kernel for :data:`DEATH_SIGNAL` when the thread that started it ends
(``prctl(PR_SET_PDEATHSIG)``), so a driver killed even with SIGKILL leaves no training behind;
a driver that calls :func:`stop_children_on_signals` also stops each child's whole process
group (its data loader workers, distributed ranks ...) when it gets SIGTERM or SIGINT (Ctrl-C).
Elsewhere the children run as before and :data:`CHILDREN_DIE_WITH_PARENT` is False: a killed
driver may leave them running.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Lines of a failed command's log quoted in its error.
TAIL_LINES = 15
#: What a child gets when its parent dies: SIGTERM, so that a child which itself runs
#: processes (``torch.distributed.run``, a nested driver) can stop them before it ends.
DEATH_SIGNAL = signal.SIGTERM
#: Seconds a child's process group has to end after SIGTERM before it gets SIGKILL.
STOP_GRACE_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1


def _prctl():
    """libc's ``prctl`` (Linux only; None elsewhere or without libc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    function = libc.prctl
    function.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                         ctypes.c_ulong]  # fmt: skip
    function.restype = ctypes.c_int
    return function


_PRCTL = _prctl()
#: Whether children started here end when their driver is killed (Linux); elsewhere they may
#: outlive a killed driver.
CHILDREN_DIE_WITH_PARENT = _PRCTL is not None


class StoppingError(RuntimeError):
    """Raised instead of starting a command once the driver is stopping (SIGTERM, Ctrl-C)."""


#: Children started and not yet waited for (pid -> process); their groups are stopped on a signal.
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.RLock()  # a signal handler on the holding thread re-enters
_stopping = threading.Event()
_warned = False


def _die_with_parent(parent: int):
    """The child's setup before ``exec``: end with the starting thread; if the parent is
    already gone (it died between fork and prctl), end now."""
    prctl = _PRCTL

    def setup() -> None:
        if prctl(_PR_SET_PDEATHSIG, DEATH_SIGNAL, 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(128 + DEATH_SIGNAL)

    return setup


def _popen(words: list[str], **kwargs) -> subprocess.Popen:
    """``Popen`` in its own process group, tied to this process's life where the system can."""
    global _warned
    if _stopping.is_set():
        raise StoppingError(f"not starting {shlex.join(words)}: this driver is stopping")
    if CHILDREN_DIE_WITH_PARENT:
        kwargs.update(preexec_fn=_die_with_parent(os.getpid()), process_group=0)
    elif not _warned:
        _warned = True
        warnings.warn(
            f"{sys.platform}: children are not tied to this process; if it is killed, stop its "
            "training processes by hand",
            RuntimeWarning,
            stacklevel=3,
        )
    stop_children_on_signals()  # a no-op off the main thread or once done
    process = subprocess.Popen(words, **kwargs)
    with _children_lock:
        _children[process.pid] = process
    return process


def _forget(process: subprocess.Popen) -> None:
    with _children_lock:
        _children.pop(process.pid, None)


def stopping() -> bool:
    """Whether this driver got SIGTERM or SIGINT (no new command starts then)."""
    return _stopping.is_set()


def stop_children(grace: float = STOP_GRACE_SECONDS) -> list[int]:
    """Stop every running child's process group: SIGTERM, then SIGKILL for a group whose
    leader is still there after ``grace`` seconds. No command starts afterwards; returns the
    children's pids."""
    _stopping.set()
    with _children_lock:
        children = [p for p in _children.values() if p.poll() is None]
    for process in children:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    waiting = list(children)
    while waiting and time.monotonic() < deadline:
        # Not Popen.wait: the interrupted main thread may hold its lock inside a wait.
        waiting = [process for process in waiting if not _exited(process)]
        if waiting:
            time.sleep(0.05)
    for process in children:
        _signal_group(process, signal.SIGKILL)  # what is left of the group
    return [process.pid for process in children]


def _exited(process: subprocess.Popen) -> bool:
    """Whether a child has ended, without reaping it (its Popen still collects the status)."""
    if not hasattr(os, "waitid"):  # no WNOWAIT here: Popen's own non-blocking poll
        return process.poll() is not None
    try:
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, process.pid, flags) is not None
    except ChildProcessError:  # already reaped
        return True


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        if CHILDREN_DIE_WITH_PARENT:
            os.killpg(process.pid, signum)
        elif process.poll() is None:
            process.send_signal(signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_children_on_signals() -> bool:
    """Make SIGTERM and SIGINT stop this driver's children first (their whole process groups),
    then act as before (SIGINT raises KeyboardInterrupt, SIGTERM ends the process). A signal
    that was ignored stays ignored. Call it from the main thread of a driver; returns whether
    the handlers are in place (False off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN or getattr(previous, "_stops_children", False):
            continue
        signal.signal(signum, _handler(signum, previous))
    return True


def _handler(signum: int, previous):
    def handle(received: int, frame) -> None:
        stopped = stop_children()
        if stopped:
            name = signal.Signals(received).name
            print(f"{name}: stopped {len(stopped)} child process(es): "
                  f"{', '.join(map(str, stopped))}", file=sys.stderr, flush=True)  # fmt: skip
        if callable(previous):
            previous(received, frame)
            return
        signal.signal(received, signal.SIG_DFL)
        os.kill(os.getpid(), received)

    handle._stops_children = True
    return handle


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
        return _popen(words, cwd=cwd, env=env)
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a" if append else "w") as stream:
        stream.write(f"\n{line}\n" if append else f"{line}\n")
        stream.flush()
        return _popen(words, cwd=cwd, env=env, stdout=stream, stderr=subprocess.STDOUT)


def finished(process: subprocess.Popen) -> bool:
    """Whether a started command has ended (then it is no longer stopped on a signal)."""
    if process.poll() is None:
        return False
    _forget(process)
    return True


def wait_command(process: subprocess.Popen, what: str, log: str | os.PathLike | None) -> None:
    """Wait for a started command; raise :class:`CommandError` when it fails."""
    try:
        code = process.wait()
    finally:
        _forget(process)
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
        for i in [i for i in running if finished(processes[i])]:
            running.remove(i)
            _finish_stage(stages[i], processes[i])
        if running and time.perf_counter() - last_report > report_every:
            last_report = time.perf_counter()
            for i in running:
                lines = log_tail(stages[i].log, 1).strip() if stages[i].log else ""
                print(f"[{stages[i].name}] {lines[:150] or 'starting'}", flush=True)
