"""Measure data loading: windows/s of GMDataset + LoadCachedWindow, and data time vs step time.

For each worker count, (1) iterate the config's training dataloader over a cache of random pixels
at the config's window size (written once into ``--work-dir``; the loader's cost does not depend
on the pixels) and print windows/s; (2) with ``--train-iters N``, train the config's model for N
iterations through mmengine's runner and print the median data time, step time and their ratio
from its logs (``vis_data/scalars.json``). A ratio near 0 means the model never waits for data.

    python tools/benchmarks/benchmark_dataloader.py --workers 0 1 2 --threads 2
    python tools/benchmarks/benchmark_dataloader.py --from-log work_dirs/demo/two_stream   # any \
        trained run
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import gm_plugins  # noqa: F401  (compat and registration first)
from gm_plugins.benchmarks.dataloader import (
    data_time_ratio,
    loader_config,
    time_loader,
    time_training,
    write_timing_cache,
)
from gm_plugins.utils.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_CONFIG = REPO_ROOT / "configs" / "gm" / "two-stream_r50-concat-fusion_12x30f_gm3.py"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(PAPER_CONFIG), help="classifier config")
    parser.add_argument("--work-dir", default="work_dirs/benchmark_dataloader")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--batch-size", type=int, default=None, help="loader batch (default: the config's)"
    )
    parser.add_argument("--subjects", type=int, default=8, help="infants in the timing cache")
    parser.add_argument("--seconds", type=float, default=60.0, help="video length of each")
    parser.add_argument("--size", type=int, default=224, help="cached frame side (window size)")
    parser.add_argument("--epochs", type=int, default=3, help="loader epochs (first is warm-up)")
    parser.add_argument(
        "--train-iters", type=int, default=0, help="also train this many iterations per setting"
    )
    parser.add_argument("--train-batch", type=int, default=8, help="batch of those iterations")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument(
        "--from-log", nargs="+", default=None, help="only read data/step time of these work dirs"
    )
    return parser.parse_args()


def print_ratio(name: str, result: dict) -> None:
    print(
        f"{name}: data time {result['data_time'] * 1000:.1f} ms, step {result['step_time']:.3f} s, "
        f"data/step {result['ratio']:.4f} (median of {result['logged_steps']} logged steps; "
        f"{result['log']})"
    )


def main() -> None:
    args = parse_args()
    if args.from_log:
        for work_dir in args.from_log:
            print_ratio(work_dir, data_time_ratio(work_dir))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    work_dir = Path(args.work_dir)
    ann_file, cache_root = write_timing_cache(
        work_dir / "data", args.subjects, args.seconds, args.size
    )
    print(
        f"{Path(args.config).name}: {args.subjects} infants x {args.seconds:g} s at "
        f"{args.size} px in {cache_root} (random pixels); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; page cache warm after the first epoch"
    )
    rows = []
    for workers in args.workers:
        loader = loader_config(cfg, ann_file, cache_root, workers, args.batch_size)
        result = time_loader(loader, epochs=args.epochs)
        rows.append((workers, loader["batch_size"], result))
        print(
            f"  {workers} workers, batch {loader['batch_size']}: "
            f"{result['windows_per_s']:.1f} windows/s ({result['windows']} windows in "
            f"{result['seconds']:.2f} s; first epoch {result['first_epoch_s']:.2f} s; "
            f"{result['mib_per_window']:.2f} MiB per collated window)"
        )
    ratios = {}
    for workers in args.workers if args.train_iters else []:
        ratios[workers] = time_training(
            cfg,
            ann_file,
            cache_root,
            workers,
            args.train_batch,
            args.train_iters,
            work_dir / f"train_{workers}workers",
        )
        print_ratio(f"  training, {workers} workers, batch {args.train_batch}", ratios[workers])
    print(f"\n{'workers':>7} {'batch':>5} {'windows/s':>10} {'train data/step':>16}")
    for workers, batch, result in rows:
        ratio = f"{ratios[workers]['ratio']:.4f}" if workers in ratios else "-"
        print(f"{workers:>7} {batch:>5} {result['windows_per_s']:>10.1f} {ratio:>16}")


if __name__ == "__main__":
    main()
