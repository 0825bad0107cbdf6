"""Stratified k-fold cross-validation by infant for any set of configs, with a Table-1 report.

Folds are made once per repeat from the first config's subjects.csv and saved in the work dir;
every config trains and tests on exactly those splits (fold f tests, fold f+1 validates, the
rest train). Each fold runs ``tools/train.py --test-after`` (train, then test the checkpoint
chosen on the validation fold) in its own process and ends by writing ``result.json``; a rerun
skips finished folds and resumes an interrupted one from its last checkpoint, so a killed run
picks up where it stopped and reports exactly what an uninterrupted run reports.

Examples::

    python tools/cross_validate.py configs/gm/two-stream_*_demo_gm-synthetic.py \\
        configs/baselines/*_demo_gm-synthetic.py --folds 5 --seed 0 \\
        --work-dir work_dirs/table1 --jobs 2
    python tools/cross_validate.py CONFIG ... --work-dir W --report-only   # rebuild the report
    python tools/cross_validate.py CONFIG --work-dir W --launcher pytorch --gpus 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout uninstalled

from mmengine.config import Config, DictAction  # noqa: E402

from gm_plugins.evaluation import cross_validation as cv  # noqa: E402
from gm_plugins.utils.io import write_json_atomic  # noqa: E402

KEEP_CHOICES = ("all", "tested", "none")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("configs", nargs="+", help="classifier configs to compare (reported by file name)")
    add("--work-dir", required=True, type=Path, help="folds, per-fold runs and the report")
    add("--folds", type=int, default=5, help="k of the k-fold split (default: %(default)s)")
    add(
        "--seed",
        type=int,
        default=0,
        help="fold and training seed of repeat 0; repeat r uses seed + r (default: %(default)s)",
    )
    add("--repeats", type=int, default=1, help="repeat the k folds with new splits (default: 1)")
    add(
        "--jobs",
        type=int,
        default=1,
        help="folds trained at once; each gets cores / jobs torch threads unless "
        "OMP_NUM_THREADS is set (default: %(default)s)",
    )
    add(
        "--launcher",
        choices=["none", "pytorch"],
        default="none",
        help="'pytorch': run each fold on --gpus processes with torch.distributed.run",
    )
    add("--gpus", type=int, default=1, help="processes per fold with --launcher pytorch")
    add(
        "--keep-checkpoints",
        choices=KEEP_CHOICES,
        default="tested",
        help="checkpoints kept after a fold is tested (default: %(default)s)",
    )
    add("--report-only", action="store_true", help="only rebuild the report from finished folds")
    add(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        default={},
        help="overrides applied to every config, e.g. train_cfg.max_epochs=4",
    )
    return parser.parse_args(argv)  # fmt: skip


def format_options(options: dict) -> list[str]:
    """``key=value`` words for ``--cfg-options`` (lists and tuples in mmengine's syntax)."""
    words = []
    for key, value in options.items():
        if isinstance(value, (list, tuple)):
            value = "[" + ",".join(str(v) for v in value) + "]"
        words.append(f"{key}={value}")
    return words


class FoldRunner:
    """Trains and tests one fold in child processes, logging to the fold's work dir."""

    def __init__(self, args: argparse.Namespace, folds_files: dict[int, Path]) -> None:
        self.args = args
        self.folds_files = folds_files
        cores = os.cpu_count() or 1
        self.threads = max(1, cores // max(1, args.jobs))
        self.lock = threading.Lock()

    def python(self, script: str) -> list[str]:
        if self.args.launcher == "pytorch":
            return [
                sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={self.args.gpus}",
                f"--master_port={29500 + os.getpid() % 1000}", str(ROOT / script),
            ]  # fmt: skip
        return [sys.executable, str(ROOT / script)]

    def run_step(self, command: list[str], log: Path, what: str) -> None:
        env = dict(os.environ)
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # the caller's setting wins
            env.setdefault(variable, str(self.threads))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with open(log, "a") as stream:
            stream.write(f"\n$ {' '.join(command)}\n")
            stream.flush()
            code = subprocess.call(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
        if code != 0:
            tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
            raise RuntimeError(f"{what} failed (exit code {code}); log {log}:\n{tail}")

    def __call__(self, run: cv.FoldRun) -> dict:
        start = time.perf_counter()
        directory = run.directory(self.args.work_dir)
        directory.mkdir(parents=True, exist_ok=True)
        cfg = Config.fromfile(run.config)
        cfg.merge_from_dict(self.args.cfg_options)
        options = dict(self.args.cfg_options)
        options.update(cv.fold_overrides(cfg, self.folds_files[run.repeat], run))
        launcher = ["--launcher", self.args.launcher]
        seed = str(self.args.seed + run.repeat)
        log = directory / "run.log"
        metrics_file = directory / "test_metrics.json"
        self.run_step(
            [*self.python("tools/train.py"), run.config, "--work-dir", str(directory),
             "--resume", "--seed", seed, "--test-after", str(metrics_file), *launcher,
             "--cfg-options", *format_options(options)],
            log, f"training and testing {run.name} {run.label}",
        )  # fmt: skip
        metrics = json.loads(metrics_file.read_text())
        checkpoint = Path(metrics.pop("checkpoint"))
        result = dict(
            config=run.config,
            name=run.name,
            repeat=run.repeat,
            fold=run.fold,
            test_fold=run.fold,
            val_fold=run.val_fold,
            seed=int(seed),
            folds_file=str(self.folds_files[run.repeat]),
            checkpoint=str(checkpoint),
            seconds=round(time.perf_counter() - start, 1),
            metrics=metrics,
        )
        # The result first: a run killed while pruning has nothing left to redo, whereas the
        # reverse order could prune the tested checkpoint of a fold that has to test it again.
        write_json_atomic(run.result_file(self.args.work_dir), result)
        prune_checkpoints(directory, checkpoint, self.args.keep_checkpoints)
        return result


def prune_checkpoints(directory: Path, tested: Path, keep: str) -> None:
    if keep == "all":
        return
    for checkpoint in directory.glob("*.pth"):
        if keep == "none" or checkpoint.resolve() != tested.resolve():
            checkpoint.unlink()


def make_folds(args: argparse.Namespace) -> dict[int, Path]:
    """Fold files per repeat from the first config's subjects; every config must share them."""
    tables = {}
    for config in args.configs:
        cfg = Config.fromfile(config)
        cfg.merge_from_dict(args.cfg_options)
        tables[config] = cv.subject_table(cfg)
    first_table, ids, labels = tables[args.configs[0]]
    for config, (table, other_ids, _) in tables.items():
        if sorted(other_ids) != sorted(ids):
            raise ValueError(
                f"{config} trains on {table}, whose infants differ from {first_table} of "
                f"{args.configs[0]}: cross-validate configs of one dataset together"
            )
    return {
        repeat: cv.prepare_folds(args.work_dir, ids, labels, args.folds, args.seed, repeat)
        for repeat in range(args.repeats)
    }


def gpus_available(count: int) -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.device_count() >= count


def write_report(args: argparse.Namespace, runs: list[cv.FoldRun]) -> str:
    """Report of the finished folds (Markdown, CSV, per-fold JSON, figures); returns the table."""
    from gm_plugins.apis.reports import plot_confusion_matrix
    from gm_plugins.datasets.gm_dataset import GM_CLASSES

    by_config: dict[str, list[dict]] = {}
    for run in runs:
        result = cv.read_result(args.work_dir, run)
        by_config.setdefault(run.name, [])
        if result is not None:
            by_config[run.name].append(result)
    summaries = {name: cv.summarise(results) for name, results in by_config.items() if results}
    if not summaries:
        return "no finished folds yet\n"
    table = cv.markdown_table(summaries)
    expected = args.folds * args.repeats
    missing = {n: expected - len(r) for n, r in by_config.items() if len(r) < expected}
    header = (
        f"# Cross-validation: {args.folds} folds by infant x {args.repeats} repeat(s), "
        f"seed {args.seed}\n\nInfant-level metrics, mean ± sample sd over folds; the checkpoint "
        "of each fold is chosen on its validation fold.\n\n"
    )
    note = "".join(f"\n{name}: {n} fold(s) not finished\n" for name, n in missing.items())
    (args.work_dir / "report.md").write_text(header + table + note)
    cv.write_csv(args.work_dir / "report.csv", summaries)
    write_json_atomic(args.work_dir / "folds.json", by_config)
    for name, summary in summaries.items():
        if summary["confusion_matrix"] is not None:
            plot_confusion_matrix(
                summary["confusion_matrix"], GM_CLASSES,
                args.work_dir / name / "confusion_matrix.png",
                f"{name[:40]}\ninfants, summed over {summary['num_runs']} folds",
            )  # fmt: skip
    cv.plot_comparison(args.work_dir / "comparison.png", summaries)
    return table + note


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for config in args.configs:
        if not Path(config).is_file():
            print(f"error: config {config} not found", file=sys.stderr)
            return 2
    if args.launcher == "pytorch" and not gpus_available(args.gpus):
        print(
            f"error: --launcher pytorch --gpus {args.gpus} needs that many CUDA GPUs (mmengine's "
            "pytorch launcher gives each rank a CUDA device); on CPUs use --jobs instead",
            file=sys.stderr,
        )
        return 2
    args.configs = [str(Path(c)) for c in args.configs]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        runs = cv.plan_runs(args.configs, args.folds, args.repeats)
        folds_files = make_folds(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failures = [] if args.report_only else execute(args, runs, folds_files)
    print(write_report(args, runs))
    print(f"report: {args.work_dir / 'report.md'} (also report.csv, comparison.png)")
    for run, error in failures:
        print(f"FAILED {run.name} {run.label}: {error}", file=sys.stderr)
    return 1 if failures else 0


def execute(
    args: argparse.Namespace, runs: list[cv.FoldRun], folds_files: dict[int, Path]
) -> list[tuple[cv.FoldRun, str]]:
    """Run the unfinished folds (``--jobs`` at a time); a failed fold is reported, not fatal."""
    todo = []
    for run in runs:
        result = cv.read_result(args.work_dir, run)
        if result is None:
            todo.append(run)
        else:  # finish the pruning a killed run may have left undone
            directory = run.directory(args.work_dir)
            prune_checkpoints(directory, Path(result["checkpoint"]), args.keep_checkpoints)
    done = len(runs) - len(todo)
    print(f"{len(runs)} fold runs, {done} already finished, {len(todo)} to run", flush=True)
    runner = FoldRunner(args, folds_files)
    failures: list[tuple[cv.FoldRun, str]] = []
    counter = dict(finished=done)
    start = time.perf_counter()

    def one(run: cv.FoldRun) -> None:
        with runner.lock:  # one line per message, whichever job prints
            print(f"[{run.name}] {run.label}: training (fold {run.fold} tests, "
                  f"{run.val_fold} validates)", flush=True)  # fmt: skip
        try:
            result = runner(run)
        except Exception as error:  # one bad fold must not stop the others
            with runner.lock:
                failures.append((run, str(error)))
                print(f"[{run.name}] {run.label}: FAILED, see "
                      f"{run.directory(args.work_dir)}/run.log", flush=True)  # fmt: skip
            return
        with runner.lock:
            counter["finished"] += 1
            metrics = result["metrics"]
            elapsed = time.perf_counter() - start
            print(
                f"[{run.name}] {run.label}: infant accuracy {metrics['subject/accuracy']:.3f}, "
                f"MCC {metrics['subject/mcc']:.3f} in {result['seconds']:.0f} s "
                f"({counter['finished']}/{len(runs)} done, {elapsed / 60:.1f} min)",
                flush=True,
            )

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, todo))
    return failures


if __name__ == "__main__":
    sys.exit(main())
