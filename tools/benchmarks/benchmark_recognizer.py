"""Measure training samples/s and inference windows/s of two-stream model configs on the CPU.

Random windows stand in for data, so the numbers are the model's cost alone (data
preprocessor, forward, backward and an AdamW step for training; data preprocessor and
``predict`` for inference). Example:

    python tools/benchmarks/benchmark_recognizer.py \
        --models configs/_base_/models/two-stream_r50-concat-fusion.py:224 \
                 configs/_base_/models/two-stream_r18-3stage-concat-fusion.py:112

``--compare-reference`` times the paper-size two-stream recognizer, run as ``tools/train.py``
runs it (config model, data preprocessor, mmengine optimiser wrapper, malloc keeping freed
memory), against a plain-PyTorch
version of the paper's network (torchvision ResNet-50 pair, concat, 1x1 conv, pooling, linear)
in one run: same threads, inputs (one 224 px RGB frame, 12 flow channels), batch sizes and
AdamW settings; median of the repeats after warm-up, peak memory of each side's process
(:mod:`gm_plugins.benchmarks.reference`):

    python tools/benchmarks/benchmark_recognizer.py --compare-reference --threads 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import gm_plugins  # noqa: F401  (compat and registration before any model import)
from gm_plugins.benchmarks.inputs import random_windows
from gm_plugins.benchmarks.timing import items_per_second
from gm_plugins.utils.allocator import keep_freed_memory

REPO_ROOT = Path(__file__).resolve().parents[2]

MODEL_DIR = REPO_ROOT / "configs" / "_base_" / "models"
PAPER_CONFIG = REPO_ROOT / "configs" / "gm" / "two-stream_r50-concat-fusion_12x30f_gm3.py"
DEFAULT_MODELS = (
    f"{MODEL_DIR / 'two-stream_r50-concat-fusion.py'}:224",
    f"{MODEL_DIR / 'two-stream_r18-3stage-concat-fusion.py'}:112",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        help="model configs as PATH:SIZE (SIZE = window height and width in pixels)",
    )
    parser.add_argument("--train-batch", type=int, default=4, help="windows per training step")
    parser.add_argument("--test-batch", type=int, default=8, help="windows per inference step")
    parser.add_argument("--frames", type=int, default=1, help="RGB frames per window (T)")
    parser.add_argument("--flow-fields", type=int, default=6, help="flow fields per window (L)")
    parser.add_argument("--iters", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    reference = parser.add_argument_group("--compare-reference")
    reference.add_argument(
        "--compare-reference",
        action="store_true",
        help="time gm_plugins against the plain-PyTorch reference of the paper's network",
    )
    reference.add_argument("--config", default=str(PAPER_CONFIG), help="gm_plugins' config")
    reference.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 16])
    reference.add_argument("--repeats", type=int, default=3, help="timed repeats per side")
    reference.add_argument("--size", type=int, default=224, help="window height and width")
    reference.add_argument(
        "--kinds", nargs="+", default=["train", "infer"], choices=["train", "infer"]
    )
    reference.add_argument(
        "--channels-last", action="store_true", help="both sides in channels_last memory format"
    )
    reference.add_argument(
        "--reference-kept-memory",
        action="store_true",
        help="also time the reference with gm_plugins' allocator setting (glibc malloc keeps "
        "freed memory, as tools/train.py sets it): a third column, reference+kept",
    )
    reference.add_argument(
        "--fast-inference",
        action="store_true",
        help="gm_plugins infers as tools/infer.py does: BatchNorm folded into the convolutions, "
        "NHWC convolution weights (gm_plugins.models.inference_speed)",
    )
    return parser.parse_args()


def random_batch(batch_size: int, frames: int, flow_fields: int, size: int) -> dict:
    """A collated batch of random windows in the dataset's packed format."""
    shapes = dict(rgb=(frames, 3, size, size), flow=(flow_fields, 2, size, size))
    return random_windows(shapes, batch_size)


def build_model(config_path: str) -> torch.nn.Module:
    from gm_plugins.models.loading import build_recognizer
    from gm_plugins.utils.config import load_config

    # A model file under configs/_base_/models/ sets no scope: it is built in mmaction's.
    cfg = load_config(config_path, scopes=("mmaction", None), required=("model",))
    return build_recognizer(cfg)


def benchmark(config_path: str, size: int, args: argparse.Namespace) -> dict:
    """Training samples/s and inference windows/s of one model config at ``size`` pixels."""
    from mmengine.optim import OptimWrapper

    model = build_model(config_path)
    parameters = sum(p.numel() for p in model.parameters())
    optim_wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-5))
    train_data = random_batch(args.train_batch, args.frames, args.flow_fields, size)
    model.train()
    train_rate = items_per_second(
        lambda: model.train_step(train_data, optim_wrapper), 1, args.iters, args.warmup
    )
    test_data = random_batch(args.test_batch, args.frames, args.flow_fields, size)
    model.eval()
    with torch.no_grad():
        test_rate = items_per_second(lambda: model.test_step(test_data), 1, args.iters, args.warmup)
    return dict(
        parameters=parameters,
        train_samples_per_s=train_rate * args.train_batch,
        test_windows_per_s=test_rate * args.test_batch,
    )


def compare_reference(args: argparse.Namespace) -> None:
    """Print gm_plugins vs the plain-PyTorch reference: rates, their ratio, peak memory."""
    import platform

    from gm_plugins.benchmarks import reference as rb

    threads = args.threads or torch.get_num_threads()
    difference = rb.check_same_function(args.config)
    print(
        f"{Path(args.config).name} vs plain PyTorch (torchvision ResNet-50 x 2); torch "
        f"{torch.__version__}, {threads} threads, {platform.processor() or platform.machine()}; "
        f"windows of {args.frames} RGB frame(s) and {args.flow_fields} flow fields at "
        f"{args.size} px; AdamW {rb.optimizer_settings(args.config)}; median of {args.repeats} "
        f"repeats of {args.iters} steps after {args.warmup} warm-up step(s)"
    )
    print(f"same function: max |logit difference| with the reference's weights {difference:.1e}")
    settings = rb.Settings(
        config=args.config, size=args.size, frames=args.frames, flow_fields=args.flow_fields,
        threads=threads, iters=args.iters, channels_last=args.channels_last,
        fast_inference=args.fast_inference, reference_kept_memory=args.reference_kept_memory,
    )  # fmt: skip
    results = rb.compare(
        settings, tuple(args.batch_sizes), args.repeats, args.warmup, tuple(args.kinds),
        log=lambda line: print(f"  {line}", flush=True),
    )  # fmt: skip
    unit = dict(train="samples/s", infer="windows/s")
    kept = rb.KEPT_REFERENCE in settings.sides
    print(
        f"{'':<6} {'batch':>5} {'gm_plugins':>11} {'reference':>10} {'ratio':>6} "
        f"{'peak MiB gm / ref':>18}" + (f"   {rb.KEPT_REFERENCE:>14} {'ratio':>6}" if kept else "")
    )
    for kind in args.kinds:
        for batch in args.batch_sizes:
            ours, theirs = results[("gm_plugins", kind, batch)], results[("reference", kind, batch)]
            line = (
                f"{kind:<6} {batch:>5} {ours.rate(batch):>11.2f} {theirs.rate(batch):>10.2f} "
                f"{ours.rate(batch) / theirs.rate(batch):>6.2f} "
                f"{ours.peak_mib:>8.0f} / {theirs.peak_mib:<8.0f}"
            )
            if kept:
                other = results[(rb.KEPT_REFERENCE, kind, batch)]
                line += f" {other.rate(batch):>14.2f} {ours.rate(batch) / other.rate(batch):>6.2f}"
            print(f"{line} ({unit[kind]})")


def main() -> None:
    args = parse_args()
    if args.compare_reference:
        compare_reference(args)
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    allocator = keep_freed_memory()  # as tools/train.py runs
    print(f"memory allocator: {allocator['reason']}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; windows of T={args.frames} "
        f"RGB frames and L={args.flow_fields} flow fields; train batch {args.train_batch}, "
        f"test batch {args.test_batch}"
    )
    print(f"{'model':<48} {'size':>5} {'params':>8} {'train samples/s':>16} {'test windows/s':>15}")
    for entry in args.models:
        path, _, size = entry.rpartition(":")
        if not path or not size.isdigit():
            raise SystemExit(f"--models entries are PATH:SIZE, got {entry!r}")
        result = benchmark(path, int(size), args)
        print(
            f"{Path(path).stem:<48} {size:>5} {result['parameters'] / 1e6:>7.1f}M "
            f"{result['train_samples_per_s']:>16.2f} {result['test_windows_per_s']:>15.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
