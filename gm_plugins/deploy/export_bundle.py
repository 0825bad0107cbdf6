"""Write a model bundle: everything a trained classifier needs to classify new videos.

The bundle folder holds the classifier config and checkpoint, the preprocessing chain named by
the config's ``preprocess_config`` (with its segmentation and pose configs and checkpoints),
class names, window and abstention settings, and a manifest with the sha256 of every file and
the package versions (see gm_plugins/deploy/bundle.py). ``tools/infer.py --bundle`` uses it.

Unless ``--no-validation`` is given, the classifier first runs on the infants of its config's
validation split (their preprocessed cache must exist, as for training), which fits the
bundle's calibration temperature, its least window agreement and its domain (the range of
every quality figure); see gm_plugins/deploy/validation.py.

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
from gm_plugins.deploy.bundle import Abstention, classifier_window, export_bundle, load_bundle
from gm_plugins.deploy.validation import fit_validation, validation_infants
from gm_plugins.utils.config import load_config


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
    parser.add_argument(
        "--no-validation",
        action="store_true",
        help="do not fit calibration, agreement and domain on the validation infants (the "
        "bundle then abstains only on its fixed thresholds)",
    )
    parser.add_argument(
        "--validation-split", default="val", help="the config's dataloader to fit them on"
    )
    parser.add_argument(
        "--domain-margin",
        type=float,
        default=None,
        help="widening of each quality figure's validation range, in range widths "
        "(default: the smallest at which leave-one-out keeps every validation infant in)",
    )
    parser.add_argument(
        "--no-disagreement-check",
        action="store_true",
        help="decide even when the windows disagree more than on validation infants",
    )
    parser.add_argument(
        "--no-domain-check",
        action="store_true",
        help="decide even outside the validation infants' quality ranges",
    )
    parser.add_argument("--device", default="cpu", help="where the classifier runs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    abstention = Abstention(
        min_probability=args.min_probability,
        min_windows=args.min_windows,
        on_fallback=not args.classify_fallbacks,
        on_disagreement=not args.no_disagreement_check,
        outside_domain=not args.no_domain_check,
    )
    validation = None
    if not args.no_validation:
        if args.out.exists() and not args.overwrite:  # before minutes of scoring
            raise FileExistsError(f"{args.out} exists; pass --overwrite to replace it")
        cfg = load_config(args.config)
        infants = validation_infants(cfg, args.checkpoint, args.validation_split, args.device)
        _, aggregation = classifier_window(cfg)
        validation = fit_validation(infants, aggregation, args.domain_margin)
        calibration = validation["calibration"]
        print(
            f"fitted on {validation['infants']} {args.validation_split} infants: temperature "
            f"{calibration['temperature']:.3g}, ECE {calibration['ece_before']:.3f} -> "
            f"{calibration['ece_after']:.3f}, least window agreement "
            f"{validation['agreement']['min_window_agreement']:.2f}, "
            f"{len(validation['domain']['figures'])} quality figures in the domain"
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
        validation=validation,
    )
    bundle = load_bundle(out)  # verifies what was written
    print(f"bundle {bundle.name}: {out} ({len(bundle.manifest['files'])} files, verified)")
    if args.zip is not None:
        print(f"zip: {args.zip}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
