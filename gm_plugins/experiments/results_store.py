"""The results store: one small JSON record per finished run, kept in the repository.

A run's work dir (checkpoints, logs, ``run.json``) lives in ``work_dirs/`` and is lost with the
machine. The store keeps what the reports need, committed with the code::

    results/<experiment>/<run name>.json     e.g. results/table1/two-stream/scratch_seed_0.json

(``table1``, ``confounding``, ``backbones``, ...). This module is the one owner of the record
format (:data:`FORMAT`). A record holds the run's identity (experiment, run name, config path,
the sha256 of the resolved config with the overrides that change its data, the sha256 of every
preprocessing checkpoint its chain loads, the seed), where and how it ran (git commit, start time
in UTC, wall seconds, torch threads, the processor with its instruction set and torch's kernel
capability, the package versions: :func:`machine_environment`) and what it gave (validation and
test figures, each test infant's label, decision and class probabilities to 6 digits).
``record_sha256`` is the sha256 of the canonical JSON of the rest: a record edited by hand is
refused on read.

How the tools use it (``tools/run_benchmark.py table1|confounding``,
``tools/analysis_tools/benchmark_backbones.py``):

- a run whose record matches (same experiment, run name, config sha256, checkpoint hashes and
  seed) is not run again: the record stands in for it, and what the report reads is written
  back into the work dir from it, so an empty ``work_dirs/`` reports the same tables;
- a record whose key does not match is reported as stale and the run is redone; the record is
  replaced (atomically) only when the new run finishes;
- every finished run is written to the store at once, so a long experiment runs in slices::

      python tools/run_benchmark.py table1 --budget-minutes 150   # launch only what fits
      git add results/ && git commit -m "table1: another slice"   # then on another machine:
      python tools/run_benchmark.py table1 --budget-minutes 150   # goes on where it stopped
      python tools/run_benchmark.py table1 --report               # tables from the records
      python tools/run_benchmark.py table1 --verify 2             # rerun 2 records, compare

``--budget-minutes M`` launches a run only while its expected wall time fits in what is left of
M minutes (the median of stored records of the same config, else the experiment's cost model
scaled by the runs measured so far; a run with no estimate at all is launched), then stops
cleanly. ``--verify K`` reruns K stored runs (chosen with ``--verify-seed``) in temporary work
dirs and compares each infant's probabilities and decisions with the record, which it never
overwrites; a run fails when more than ``--verify-tolerance`` decisions changed (default 0: on
the same processor and thread count a rerun is expected to repeat every decision).
See docs/en/user_guides/results_store.md.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import platform
import random
import re
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gm_plugins.utils.io import write_text_atomic

#: Format of the records; a record of another format is refused.
FORMAT = "gm-results/1"
#: The store of the repository, relative to it (the tools pass the repository's own).
STORE_ROOT = Path("results")
#: Decimals kept of figures and probabilities.
DIGITS = 6


class RecordError(ValueError):
    """A stored record that cannot be trusted (edited, truncated, of another format)."""


# -- canonical values ------------------------------------------------------------------------


def rounded(value: object, digits: int = DIGITS) -> object:
    """``value`` with floats rounded to ``digits`` decimals, NaN and infinities as None, numpy
    scalars as Python numbers, tuples as lists (what JSON gives back)."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        return [rounded(v, digits) for v in items]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} cannot go into a results record")


def canonical_json(value: object) -> str:
    """The one text a value hashes as: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def record_digest(record: Mapping) -> str:
    """sha256 of the canonical JSON of ``record`` without its ``record_sha256``."""
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


# -- keys ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (remembered while its size and time stay the same)."""
    stat = os.stat(path)
    return _file_sha256(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _pretty_text(path: str, size: int, mtime_ns: int) -> str:
    from mmengine.config import Config

    return Config.fromfile(path).pretty_text


def _resolve(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.is_absolute() else Path(root) / path


def config_text(config: str | os.PathLike, root: str | os.PathLike = ".") -> str:
    """The resolved config (``Config.fromfile(path).pretty_text``, its bases merged)."""
    path = _resolve(config, root)
    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found")
    stat = path.stat()
    return _pretty_text(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def config_sha256(
    config: str | os.PathLike,
    overrides: Sequence[str] | Mapping = (),
    chains: Iterable[str] = (),
    root: str | os.PathLike = ".",
) -> str:
    """sha256 of the resolved config, the run's overrides (``--cfg-options`` as given: data
    roots, caches, schedule) and the resolved preprocessing chains its data went through."""
    digest = hashlib.sha256(config_text(config, root).encode())
    digest.update(canonical_json(rounded(overrides)).encode())
    for chain in chains:
        digest.update(config_text(chain, root).encode())
    return digest.hexdigest()


def chain_checkpoints(
    chains: Iterable[str], root: str | os.PathLike = ".", missing_ok: bool = False
) -> dict[str, str | None]:
    """Every checkpoint named by a step of the preprocessing chains, with its file's sha256.

    Args:
        missing_ok: a checkpoint not on this machine gets None (reports only) instead of an
            error.

    Raises:
        FileNotFoundError: a checkpoint is missing (``missing_ok`` False).
    """
    from gm_plugins.preprocess.chain import read_chain_config

    hashes: dict[str, str | None] = {}
    for chain in dict.fromkeys(chains):
        cfg = read_chain_config(_resolve(chain, root))
        for step in cfg.preprocess_pipeline:
            checkpoint = step.get("checkpoint")
            if not checkpoint or checkpoint in hashes:
                continue
            path = _resolve(checkpoint, root)
            if path.is_file():
                hashes[checkpoint] = file_sha256(path)
            elif missing_ok:
                hashes[checkpoint] = None
            else:
                raise FileNotFoundError(
                    f"{path}: checkpoint of the chain {chain} is missing; train or restore the "
                    "preprocessing models first"
                )
    return hashes


@dataclass(frozen=True)
class RunKey:
    """What a stored record must match to stand in for a run (``config`` is informative)."""

    experiment: str
    run: str
    config: str
    config_sha256: str
    checkpoints: Mapping[str, str | None] = field(default_factory=dict)
    seed: int | None = None

    def differences(self, record: Mapping) -> list[str]:
        """Why ``record`` does not match this key, in words; empty when it matches. A checkpoint
        hash of None (not on this machine) matches any stored hash."""
        problems = []
        for name in ("experiment", "run", "seed"):
            if record.get(name) != getattr(self, name):
                problems.append(f"{name} {record.get(name)!r} (now {getattr(self, name)!r})")
        if record.get("config_sha256") != self.config_sha256:
            problems.append(f"config {self.config} changed (or its data or overrides)")
        stored = record.get("checkpoints") or {}
        if set(stored) != set(self.checkpoints):
            now = sorted(self.checkpoints)
            problems.append(f"other preprocessing checkpoints ({sorted(stored)}, now {now})")
        else:
            problems += [
                f"checkpoint {path} changed"
                for path, digest in self.checkpoints.items()
                if digest is not None and stored[path] != digest
            ]
        return problems


# -- the record ------------------------------------------------------------------------------


def git_commit(root: str | os.PathLike = ".") -> str | None:
    """``git rev-parse HEAD`` of ``root``; None outside a git repository."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


#: Processor features that decide which kernels torch runs on a CPU (and so its speed and the
#: last digits of its results), as ``/proc/cpuinfo`` names them (x86 ``flags``, Arm
#: ``Features``).
SPEED_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
    "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm",
)  # fmt: skip
#: Distributions whose versions a record names (those installed).
VERSIONED = (
    "torch", "torchvision", "numpy", "mmengine", "mmcv", "mmaction2", "mmsegmentation",
    "mmpose", "mmdet", "opencv-python", "opencv-python-headless", "onnxruntime", "scipy",
    "scikit-learn",
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    name, flags = "", frozenset()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            field_name, _, value = line.partition(":")
            field_name = field_name.strip()
            if field_name in ("model name", "Model name") and not name:
                name = value.strip()
            elif field_name in ("flags", "Features") and not flags:
                flags = frozenset(value.split())
    except OSError:
        pass
    return name, flags


def torch_cpu_capability() -> str | None:
    """The vector instruction set torch's CPU kernels dispatch to (``AVX2``, ``AVX512``, ...);
    None without torch."""
    try:
        import torch
    except ImportError:
        return None
    capability = getattr(torch.backends.cpu, "get_cpu_capability", None)
    return capability() if capability is not None else None


def processor() -> dict:
    """The processor: model name (``/proc/cpuinfo``, else ``platform``), core count, the
    instruction-set features among :data:`SPEED_FLAGS` and torch's kernel capability."""
    name, flags = _cpuinfo()
    return dict(
        name=name or platform.processor() or platform.machine(),
        cpus=os.cpu_count(),
        machine=platform.machine(),
        instruction_set=[flag for flag in SPEED_FLAGS if flag in flags],
        torch_capability=torch_cpu_capability(),
    )


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Python, gm_plugins and every installed distribution of :data:`VERSIONED`."""
    from importlib import metadata

    from gm_plugins.version import __version__

    versions = dict(python=platform.python_version(), gm_plugins=__version__)
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine_environment() -> dict:
    """Where a run ran, as every record says it: the processor and the package versions."""
    return dict(processor=processor(), versions=package_versions())


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def infants_from_predictions(path: str | os.PathLike) -> dict:
    """The test infants of a ``SubjectMetric(out_file=...json)`` file, compactly: ``classes``,
    ``ids``, ``labels``, ``predicted`` and ``probabilities`` (one row per infant, by id)."""
    document = json.loads(Path(path).read_text())
    subjects = sorted(document["subjects"], key=lambda s: s["subject_id"])
    return dict(
        classes=list(document.get("classes", [])),
        aggregation=document.get("aggregation", "mean"),
        ids=[s["subject_id"] for s in subjects],
        labels=[int(s["label"]) for s in subjects],
        predicted=[int(s["predicted"]) for s in subjects],
        probabilities=[[round(float(p), DIGITS) for p in s["scores"]] for s in subjects],
    )


def predictions_document(infants: Mapping, metrics: Mapping | None = None) -> dict:
    """The ``SubjectMetric`` predictions file of a record's ``test_infants`` (what
    ``load_predictions`` and the reports read)."""
    classes = list(infants["classes"])

    def name(index: int) -> str:
        return classes[index] if 0 <= index < len(classes) else str(index)

    subjects = [
        dict(subject_id=i, label=label, label_name=name(label), predicted=predicted,
             predicted_name=name(predicted), scores=list(scores))
        for i, label, predicted, scores in zip(
            infants["ids"], infants["labels"], infants["predicted"], infants["probabilities"],
            strict=True,
        )
    ]  # fmt: skip
    return dict(
        classes=classes,
        aggregation=infants.get("aggregation", "mean"),
        subjects=subjects,
        metrics=dict(metrics or {}),
    )


def build_record(
    key: RunKey,
    *,
    seconds: float | None,
    validation: Mapping | None,
    test: Mapping | None,
    infants: Mapping | None,
    start_time: str | None = None,
    threads: int | None = None,
    root: str | os.PathLike = ".",
    extra: Mapping | None = None,
) -> dict:
    """A complete record (``record_sha256`` included) of a finished run."""
    record = dict(
        format=FORMAT,
        experiment=key.experiment,
        run=key.run,
        config=str(key.config),
        config_sha256=key.config_sha256,
        checkpoints=dict(key.checkpoints),
        seed=key.seed,
        git_commit=git_commit(root),
        start_time=start_time,
        seconds=None if seconds is None else round(float(seconds), 1),
        threads=threads,
        **machine_environment(),
        validation=rounded(validation),
        test=rounded(test),
        test_infants=rounded(infants),
    )
    if extra:
        record["extra"] = rounded(extra)
    record = json.loads(canonical_json(record))  # as it reads back
    record["record_sha256"] = record_digest(record)
    return record


def record_text(record: Mapping) -> str:
    """A record as its file holds it: one line per field, each value compact (small files,
    readable diffs)."""
    fields = (f" {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in record.items())
    return "{\n" + ",\n".join(fields) + "\n}\n"


def read_record(path: str | os.PathLike) -> dict:
    """A record, checked.

    Raises:
        RecordError: not JSON, another format, or changed since it was written (its
            ``record_sha256`` does not match), naming the file and what to do.
    """
    path = Path(path)
    redo = f"delete {path} and run that run again (the tool then writes a new record)"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RecordError(f"{path}: not a readable results record ({error}); {redo}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise RecordError(f"{path}: format {found!r}, expected {FORMAT!r}; {redo}")
    if record.get("record_sha256") != record_digest(record):
        raise RecordError(
            f"{path}: the record was changed after it was written (record_sha256 does not "
            f"match its content), so its figures cannot be trusted; {redo}"
        )
    return record


@dataclass(frozen=True)
class Lookup:
    """A run's state in the store: ``'match'``, ``'stale'`` (``why``) or ``'missing'``."""

    status: str
    record: dict | None = None
    why: tuple[str, ...] = ()


class ResultsStore:
    """The records under ``root`` (default: ``results/`` of the working directory)."""

    def __init__(self, root: str | os.PathLike = STORE_ROOT) -> None:
        self.root = Path(root)

    def path(self, experiment: str, run: str) -> Path:
        """``root/<experiment>/<run>.json``; the run name loses a leading ``<experiment>/``
        and keeps ``/`` as folders, anything but letters, digits, ``.-_`` becomes ``_``."""
        name = run.removeprefix(experiment + "/")
        parts = [re.sub(r"[^A-Za-z0-9._-]+", "_", p).strip("_") for p in name.split("/")]
        parts = [p for p in parts if p and set(p) != {"."}]
        if not parts or not re.fullmatch(r"[A-Za-z0-9._-]+", experiment):
            raise ValueError(f"no record path for experiment {experiment!r}, run {run!r}")
        return self.root.joinpath(experiment, *parts[:-1], parts[-1] + ".json")

    def read(self, experiment: str, run: str) -> dict | None:
        """The run's record, None when there is none (:class:`RecordError` when refused)."""
        path = self.path(experiment, run)
        return read_record(path) if path.is_file() else None

    def write(self, record: Mapping) -> Path:
        """Store a record from :func:`build_record` (atomically: the old one stays until the new
        one is complete)."""
        if record.get("record_sha256") != record_digest(record):
            raise RecordError("refusing to store a record whose record_sha256 does not match")
        return write_text_atomic(
            self.path(record["experiment"], record["run"]), record_text(record)
        )

    def lookup(self, key: RunKey) -> Lookup:
        record = self.read(key.experiment, key.run)
        if record is None:
            return Lookup("missing")
        why = key.differences(record)
        return Lookup("stale", record, tuple(why)) if why else Lookup("match", record)

    def records(self, experiment: str | None = None) -> list[dict]:
        """Every record (of ``experiment``), checked, in path order."""
        base = self.root / experiment if experiment else self.root
        return [read_record(p) for p in sorted(base.rglob("*.json")) if not p.name.startswith(".")]

    def log_verification(self, entry: Mapping) -> Path:
        """Append a :func:`verification_entry` to its experiment's log (one line, written in
        one append so that a killed writer leaves the earlier lines whole)."""
        if entry.get("entry_sha256") != entry_digest(entry):
            raise RecordError("refusing to log an entry whose entry_sha256 does not match")
        path = self.root / entry["experiment"] / VERIFICATIONS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (canonical_json(entry) + "\n").encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return path

    def verifications(self, experiment: str) -> list[dict]:
        """The experiment's verification log, checked (:class:`RecordError` naming the file and
        line of an entry changed after it was written)."""
        path = self.root / experiment / VERIFICATIONS_FILE
        if not path.is_file():
            return []
        entries = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict) or entry.get("entry_sha256") != entry_digest(entry):
                raise RecordError(
                    f"{path}, line {number}: not a verification entry as --verify wrote it "
                    "(unreadable or changed since); delete that line and run --verify again"
                )
            entries.append(entry)
        return entries

    def seconds_by_config(self) -> dict[str, list[float]]:
        """Wall seconds of the stored runs (any experiment), by config sha256."""
        seconds: dict[str, list[float]] = {}
        for record in self.records() if self.root.is_dir() else []:
            if record.get("seconds") is not None:
                seconds.setdefault(record["config_sha256"], []).append(float(record["seconds"]))
        return seconds


def set_aside(directory: Path) -> Path:
    """Rename ``directory`` to a free ``<name>.stale[N]`` next to it (a run's work dir of another
    key: kept for inspection, out of the way of the new run); returns the new path."""
    for number in range(1, 1000):
        suffix = ".stale" if number == 1 else f".stale{number}"
        aside = directory.with_name(directory.name + suffix)
        if not aside.exists():
            return directory.rename(aside)
    raise FileExistsError(f"{directory}: too many stale copies next to it; delete some")


# -- provenance of a table ---------------------------------------------------------------------


def processor_label(processor: Mapping) -> str:
    """A record's processor in words: model name, cores and torch's kernel capability."""
    name = str(processor.get("name") or "processor not recorded")
    details = [f"{processor['cpus']} cores"] if processor.get("cpus") else []
    if processor.get("torch_capability"):
        details.append(str(processor["torch_capability"]))
    return f"{name} ({', '.join(details)})" if details else name


def provenance(records: Iterable[Mapping]) -> dict:
    """What the runs behind a table cost and where they ran, from their records alone: how many,
    their summed wall seconds, the first and last day they started (UTC), and how many ran on
    each processor and with each torch thread count."""
    records = list(records)
    seconds = [float(r["seconds"]) for r in records if r.get("seconds") is not None]
    days = sorted(str(r["start_time"])[:10] for r in records if r.get("start_time"))
    processors: dict[str, int] = {}
    threads: dict[str, int] = {}
    for record in records:
        label = processor_label(record.get("processor") or {})
        processors[label] = processors.get(label, 0) + 1
        count = str(record.get("threads") or "not recorded")
        threads[count] = threads.get(count, 0) + 1
    return dict(
        records=len(records),
        seconds=round(sum(seconds), 1),
        untimed=len(records) - len(seconds),
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        processors=dict(sorted(processors.items(), key=lambda item: -item[1])),
        threads=dict(sorted(threads.items(), key=lambda item: -item[1])),
    )


def provenance_text(figures: Mapping, unit: str = "runs") -> str:
    """One paragraph of :func:`provenance`'s figures for a report."""
    if not figures["records"]:
        return f"Recorded {unit}: none yet."
    hours = figures["seconds"] / 3600
    days = figures["first_day"] or "an unrecorded day"
    if figures["last_day"] and figures["last_day"] != figures["first_day"]:
        days = f"{figures['first_day']} to {figures['last_day']}"
    processors = "; ".join(f"{label}: {count}" for label, count in figures["processors"].items())
    threads = ", ".join(f"{count} ({n})" for count, n in figures["threads"].items())
    untimed = f", {figures['untimed']} without a recorded time" if figures["untimed"] else ""
    return (
        f"Compute: {figures['records']} recorded {unit}, {hours:.1f} h of wall time in all (the "
        f"sum of the records' seconds{untimed}), started {days} (UTC). Processors: {processors}. "
        f"Torch threads per run: {threads}."
    )


# -- budget and estimates --------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def estimate_seconds(
    measured: Sequence[float], cost: float, seconds_per_cost: Sequence[float]
) -> float | None:
    """A run's expected seconds: the median of stored runs of its config, else its cost times
    the median seconds per unit of cost seen so far; None when nothing is known."""
    if measured:
        return median(measured)
    per_cost = median(seconds_per_cost)
    return None if per_cost is None else per_cost * cost


class Budget:
    """Wall-clock minutes for one invocation: which runs may still start.

    A run fits while its estimate is at most the time left; a run without an estimate fits while
    any time is left. ``left_out`` collects the runs not started for want of time.
    """

    def __init__(self, minutes: float, clock=time.monotonic) -> None:
        self.seconds = float(minutes) * 60
        self.clock = clock
        self.start = clock()
        self.left_out: list[str] = []

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.start)

    def fits(self, estimate: float | None) -> bool:
        left = self.remaining()
        return left > 0 and (estimate is None or estimate <= left)

    def leave_out(self, names: Iterable[str]) -> None:
        self.left_out += [name for name in names if name not in self.left_out]


# -- verification ----------------------------------------------------------------------------


def choose_for_verify(names: Iterable[str], count: int, seed: int) -> list[str]:
    """``count`` of ``names`` drawn at random with ``seed`` (all of them when fewer)."""
    pool = sorted(set(names))
    return sorted(random.Random(seed).sample(pool, min(count, len(pool))))


def compare_infants(stored: Mapping, new: Mapping) -> dict:
    """A rerun's test infants against the stored ones: the largest absolute change of a class
    probability, how many decisions changed, and both accuracies.

    Raises:
        ValueError: the two were tested on other infants.
    """
    if sorted(stored["ids"]) != sorted(new["ids"]):
        raise ValueError("the rerun was tested on other infants than the record")
    position = {subject: i for i, subject in enumerate(new["ids"])}
    largest, changed, right_stored, right_new = 0.0, 0, 0, 0
    for i, subject in enumerate(stored["ids"]):
        j = position[subject]
        old_p, new_p = stored["probabilities"][i], new["probabilities"][j]
        largest = max([largest, *(abs(a - b) for a, b in zip(old_p, new_p, strict=True))])
        changed += stored["predicted"][i] != new["predicted"][j]
        right_stored += stored["predicted"][i] == stored["labels"][i]
        right_new += new["predicted"][j] == new["labels"][j]
    count = len(stored["ids"])
    return dict(
        infants=count,
        max_abs_probability_difference=round(largest, DIGITS),
        decisions_changed=changed,
        stored_accuracy=right_stored / count if count else math.nan,
        new_accuracy=right_new / count if count else math.nan,
    )


def verify_line(run: str, comparison: Mapping, tolerance: int) -> str:
    """One line of ``--verify`` output for a run."""
    ok = comparison["decisions_changed"] <= tolerance
    return (
        f"[verify] {run}: max |Δ probability| {comparison['max_abs_probability_difference']:.6f}"
        f" over {comparison['infants']} test infants, {comparison['decisions_changed']} "
        f"decision(s) changed, accuracy stored {comparison['stored_accuracy']:.3f} / new "
        f"{comparison['new_accuracy']:.3f}: {'OK' if ok else 'CHANGED'}"
    )


#: Each experiment's log of ``--verify`` reruns, one JSON object per line, beside its records.
VERIFICATIONS_FILE = "verifications.jsonl"


def entry_digest(entry: Mapping) -> str:
    """sha256 of the canonical JSON of a verification entry without its ``entry_sha256``."""
    body = {k: v for k, v in entry.items() if k != "entry_sha256"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def verification_entry(
    experiment: str,
    run: str,
    record: Mapping,
    comparison: Mapping | None,
    tolerance: int,
    failed: str | None = None,
    root: str | os.PathLike = ".",
) -> dict:
    """One rerun of a stored run for the verification log: which record (its
    ``record_sha256``, processor and commit), where and when the rerun ran, and
    :func:`compare_infants`'s figures (or why the rerun ``failed``)."""
    entry = dict(
        format=FORMAT,
        experiment=experiment,
        run=run,
        record_sha256=record["record_sha256"],
        record_processor=record.get("processor") or {},
        record_git_commit=record.get("git_commit"),
        verified_at=utc_now(),
        git_commit=git_commit(root),
        processor=processor(),
        threads=record.get("threads"),
        tolerance=tolerance,
        comparison=rounded(dict(comparison)) if comparison is not None else None,
        failed=failed,
    )
    entry = json.loads(canonical_json(entry))
    entry["entry_sha256"] = entry_digest(entry)
    return entry


def verification_summary(entries: Iterable[Mapping], records: Iterable[Mapping]) -> dict:
    """The reruns of ``records`` (entries of other or replaced records are left out), split by
    whether the rerun's processor is the record's (:func:`processor_label`): reruns, distinct
    records rerun, test decisions changed of all compared, the largest probability change and
    the processors."""
    current = {record["record_sha256"] for record in records}
    groups: dict[str, dict] = {}
    rerun_records: dict[str, set[str]] = {}
    days: set[str] = set()
    for entry in entries:
        if entry["record_sha256"] not in current:
            continue
        days.add(str(entry["verified_at"])[:10])
        rerun = processor_label(entry["processor"])
        made = processor_label(entry["record_processor"])
        name = "same processor" if rerun == made else "other processor"
        group = groups.setdefault(name, dict(
            reruns=0, records=0, failed=0, infants=0, decisions_changed=0,
            max_abs_probability_difference=0.0, processors=[]))  # fmt: skip
        group["reruns"] += 1
        rerun_records.setdefault(name, set()).add(entry["record_sha256"])
        pair = f"{rerun} reran records of {made}"
        if pair not in group["processors"]:
            group["processors"].append(pair)
        comparison = entry.get("comparison")
        if comparison is None:
            group["failed"] += 1
            continue
        group["infants"] += comparison["infants"]
        group["decisions_changed"] += comparison["decisions_changed"]
        group["max_abs_probability_difference"] = max(
            group["max_abs_probability_difference"], comparison["max_abs_probability_difference"]
        )
    for name, group in groups.items():
        group["records"] = len(rerun_records[name])
    return dict(days=sorted(days), groups=dict(sorted(groups.items(), reverse=True)))


def _count(number: int, noun: str) -> str:
    """``1 run``, ``2 runs``: ``noun`` is plural."""
    return f"{number} {noun[:-1] if number == 1 and noun.endswith('s') else noun}"


def verification_text(summary: Mapping, unit: str = "runs") -> str:
    """One paragraph of :func:`verification_summary`'s figures for a report."""
    if not summary["groups"]:
        return f"Verification: no stored {unit} rerun yet (--verify K reruns K and logs them)."
    parts = []
    for name, group in summary["groups"].items():
        failed = f" ({group['failed']} failed)" if group["failed"] else ""
        parts.append(
            f"on the {name} model ({'; '.join(group['processors'])}): "
            f"{_count(group['reruns'], 'reruns')} of {_count(group['records'], unit)}{failed}, "
            f"{group['decisions_changed']} of {group['infants']} test decisions changed, largest "
            f"|Δ probability| {group['max_abs_probability_difference']:.6f}"
        )
    return (
        f"Verification (--verify, {', '.join(summary['days'])}; reruns from the records' "
        f"configs and seeds): {'. '.join(p[0].upper() + p[1:] for p in parts)}."
    )


def add_store_arguments(parser: argparse.ArgumentParser, unit: str = "runs") -> None:
    """The store's command-line options (``--results-dir``, ``--budget-minutes``, ``--report``,
    ``--verify``, ``--verify-seed``, ``--verify-tolerance``); ``unit`` names what is run."""
    store = parser.add_argument_group("results store")
    store.add_argument("--results-dir", type=Path, default=STORE_ROOT,
                       help="the results store (default: results/ of the repository)")  # fmt: skip
    store.add_argument(
        "--budget-minutes",
        type=float,
        help=f"launch only {unit} whose measured or estimated time fits in what is left of this "
        "many minutes, then stop (exit 0); run again to go on",
    )
    action = store.add_mutually_exclusive_group()
    action.add_argument(
        "--report",
        action="store_true",
        help="rebuild the tables and figures from the stored records alone (no training); "
        "partial, naming what is missing, while records are missing",
    )
    action.add_argument("--verify", type=int, default=0, metavar="K",
                        help=f"rerun K stored {unit} in temporary work dirs and compare them with "
                        "their records")  # fmt: skip
    store.add_argument("--verify-seed", type=int, default=0, help="seed of --verify's draw")
    store.add_argument(
        "--verify-tolerance",
        type=int,
        default=0,
        help="changed test decisions a verified run may have before the exit code is 1 "
        "(default: %(default)s)",
    )


def check_store_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse impossible store options through ``parser.error``."""
    if args.budget_minutes is not None and args.budget_minutes <= 0:
        parser.error("--budget-minutes must be positive")
    if args.verify < 0 or args.verify_tolerance < 0:
        parser.error("--verify and --verify-tolerance must be at least 0")


def store_options(args: argparse.Namespace) -> dict:
    """The keyword arguments the benchmark drivers take from :func:`add_store_arguments`'s
    options: ``store``, ``budget_minutes``, ``report``, ``verify``, ``verify_seed``,
    ``verify_tolerance``."""
    return dict(
        store=ResultsStore(args.results_dir),
        budget_minutes=args.budget_minutes,
        report=args.report,
        verify=args.verify,
        verify_seed=args.verify_seed,
        verify_tolerance=args.verify_tolerance,
    )
