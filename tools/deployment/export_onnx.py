"""Export the classifier, segmentation and pose networks to ONNX, checked with ONNX Runtime.

Each export writes DIR/NAME.onnx and DIR/NAME.json (inputs, normalisation, opset, source
hashes, parity figures) and fails when ONNX Runtime and PyTorch differ by more than 1e-4
(relative to the output scale) on random inputs. Examples:

    python tools/deployment/export_onnx.py recognizer \
        configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py \
        --checkpoint work_dirs/demo/two_stream/epoch_8.pth --out work_dirs/onnx
    python tools/deployment/export_onnx.py seg SEG_CONFIG --checkpoint SEG_CKPT --out work_dirs/onnx
    python tools/deployment/export_onnx.py pose POSE_CONFIG --checkpoint POSE_CKPT --out \
        work_dirs/onnx
    python tools/deployment/export_onnx.py bundle work_dirs/demo/bundle --out work_dirs/demo/onnx
    python tools/deployment/export_onnx.py benchmark \
        configs/_base_/models/two-stream_r50-concat-fusion.py \
        --size 224 --frames 1 --flow-fields 6 --batch 16 --threads 2

Without ``--checkpoint`` the model gets random weights (for checking that it exports).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _window_shapes(args: argparse.Namespace) -> dict | None:
    """``--size/--frames/--flow-fields`` as classifier input shapes (None without --size)."""
    if args.size is None:
        if args.frames is not None or args.flow_fields is not None:
            raise SystemExit("error: --frames and --flow-fields need --size (the window in px)")
        return None
    frames = 1 if args.frames is None else args.frames
    flow_fields = 6 if args.flow_fields is None else args.flow_fields
    return dict(rgb=(frames, 3, args.size, args.size), flow=(flow_fields, 2, args.size, args.size))


def _add_window_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="window height and width in px (default: the config's model.input_shapes)",
    )
    parser.add_argument("--frames", type=int, default=None, help="RGB frames per window (1)")
    parser.add_argument("--flow-fields", type=int, default=None, help="flow fields (6)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="allowed max |ONNX Runtime - PyTorch| relative to max(1, |output|) (1e-4)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    recognizer = commands.add_parser("recognizer", help="the two-stream classifier")
    recognizer.add_argument("config", help="classifier config (configs/gm/... or a model file)")
    _add_window_args(recognizer)
    for name, help_text in (("seg", "the segmentation model"), ("pose", "the pose model")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("config", help=f"mmseg/mmpose config of {help_text}")
        sub.add_argument(
            "--input-size",
            type=int,
            nargs=2,
            metavar=("H", "W"),
            default=None,
            help="input size (default: from the config)",
        )
    for sub in (recognizer, commands.choices["seg"], commands.choices["pose"]):
        sub.add_argument("--checkpoint", default=None, help="trained weights (default: random)")
        sub.add_argument("--out", required=True, help="folder for NAME.onnx and NAME.json")
        sub.add_argument("--name", default=None, help="file stem (classifier/segmentation/pose)")

    bundle = commands.add_parser("bundle", help="every network of a model bundle")
    bundle.add_argument("bundle", help="bundle folder or .zip (tools/deployment/export_bundle.py)")
    bundle.add_argument("--out", required=True, help="folder for the .onnx and .json files")
    _add_window_args(bundle)

    benchmark = commands.add_parser(
        "benchmark", help="classifier windows/s in PyTorch and ONNX Runtime (random weights)"
    )
    benchmark.add_argument("config", help="classifier config")
    _add_window_args(benchmark)
    benchmark.add_argument("--batch", type=int, default=16, help="windows per batch")
    benchmark.add_argument("--threads", type=int, default=1, help="intra-op threads, both")
    benchmark.add_argument("--iters", type=int, default=3, help="timed batches")
    benchmark.add_argument("--warmup", type=int, default=1, help="untimed batches first")
    return parser.parse_args(argv)


def _report(name: str, result) -> None:
    print(
        f"{name}: {result.onnx_path} (+ {result.sidecar_path.name}); ONNX Runtime vs PyTorch "
        f"max |diff| {result.max_abs_diff:.2e} (outputs up to {result.scale:.3g})",
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    import gm_plugins  # noqa: F401  (compat and registration before any model import)
    from gm_plugins.benchmarks import onnx_classifier
    from gm_plugins.deploy import onnx_export

    options = {}
    if args.opset is not None:
        options["opset"] = args.opset
    if args.tolerance is not None:
        options["tolerance"] = args.tolerance
    if args.command in ("recognizer", "seg", "pose"):
        out = Path(args.out)
        if args.command == "recognizer":
            name = args.name or "classifier"
            result = onnx_export.export_classifier(
                args.config,
                out / f"{name}.onnx",
                checkpoint=args.checkpoint,
                input_shapes=_window_shapes(args),
                **options,
            )
        else:
            name = args.name or ("segmentation" if args.command == "seg" else "pose")
            export = (
                onnx_export.export_segmentation
                if args.command == "seg"
                else onnx_export.export_pose
            )
            size = tuple(args.input_size) if args.input_size else None
            result = export(
                args.config,
                out / f"{name}.onnx",
                checkpoint=args.checkpoint,
                input_size=size,
                **options,
            )
        _report(name, result)
    elif args.command == "bundle":
        results = onnx_export.export_bundle_models(
            args.bundle, args.out, input_shapes=_window_shapes(args), **options
        )
        for name, result in results.items():
            _report(name, result)
    else:
        import os

        import torch

        result = onnx_classifier.benchmark_classifier(
            args.config,
            input_shapes=_window_shapes(args),
            batch_size=args.batch,
            threads=args.threads,
            iters=args.iters,
            warmup=args.warmup,
        )
        load = os.getloadavg()
        print(
            f"{Path(args.config).stem}: {result['parameters'] / 1e6:.1f}M parameters, "
            f"inputs {result['input_shapes']}, batch {result['batch_size']}, "
            f"{result['threads']} thread(s), ONNX file {result['onnx_megabytes']} MB\n"
            f"  PyTorch {torch.__version__}: {result['torch_windows_per_s']:.2f} windows/s\n"
            f"  ONNX Runtime: {result['onnxruntime_windows_per_s']:.2f} windows/s\n"
            f"  max |diff| of the logits {result['max_abs_diff']:.2e} (logits up to "
            f"{result['scale']:.3g}); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            flush=True,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from gm_plugins.deploy.bundle import BundleError
    from gm_plugins.preprocess.model_runners import CheckpointMismatchError
    from gm_plugins.runtime.onnx import OnnxExportError
    from gm_plugins.utils.config import ConfigError

    try:
        return run(args)
    except (
        FileNotFoundError,
        ConfigError,
        BundleError,
        CheckpointMismatchError,
        OnnxExportError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
