"""Write a model bundle: everything a trained classifier needs to classify new videos.

The bundle folder holds the classifier config and checkpoint, the preprocessing chain named by
the config's ``preprocess_config`` (with its segmentation and pose configs and checkpoints),
class names, window and abstention settings, and a manifest with the sha256 of every file and
the package versions (see gm_plugins/apis/bundle.py). ``tools/infer.py --bundle`` uses it.

Example::

    python tools/deployment/export_bundle.py \
        configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py \
        work_dirs/demo/two_stream/best_subject_accuracy_epoch_5.pth \
        --out work_dirs/demo/bundle --zip work_dirs/demo/bundle.zip
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gm_plugins  # noqa: F401
from gm_plugins.deploy.bundle import Abstention, export_bundle, load_bundle


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="the classifier config it was trained with")
    parser.add_argument("checkpoint", help="the trained classifier checkpoint (.pth)")
    parser.add_argument("--out", required=True, type=Path, help="bundle folder to write")
    parser.add_argument("--zip", type=Path, default=None, help="also write it as this .zip")
    parser.add_argument(
        "--preprocess-config", default=None, help="the chain, if the config names none"
    )
    parser.add_argument("--name", default=None, help="name shown in reports")
    parser.add_argument(
        "--min-probability",
        type=float,
        default=Abstention.min_probability,
        help="results below this top probability say 'uncertain'",
    )
    parser.add_argument(
        "--min-windows",
        type=int,
        default=Abstention.min_windows,
        help="videos giving fewer classifier windows say 'uncertain'",
    )
    parser.add_argument(
        "--classify-fallbacks",
        action="store_true",
        help="give a class even when preprocessing fell back (default: 'uncertain')",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    abstention = Abstention(
        min_probability=args.min_probability,
        min_windows=args.min_windows,
        on_fallback=not args.classify_fallbacks,
    )
    out = export_bundle(
        args.config,
        args.checkpoint,
        args.out,
        preprocess_config=args.preprocess_config,
        abstention=abstention,
        name=args.name,
        overwrite=args.overwrite,
        zip_path=args.zip,
    )
    bundle = load_bundle(out)  # verifies what was written
    print(f"bundle {bundle.name}: {out} ({len(bundle.manifest['files'])} files, verified)")
    if args.zip is not None:
        print(f"zip: {args.zip}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
