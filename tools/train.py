"""Train a model from a config of this repository (any default scope).

Examples:
    python tools/train.py configs/gm/<config>.py --work-dir work_dirs/exp1
    python tools/train.py CONFIG --resume            # resume from the latest checkpoint
    python tools/train.py CONFIG --cfg-options train_dataloader.batch_size=8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gm_plugins.apis import runner as runner_api


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a gm_plugins, mmseg or mmpose model")
    parser.add_argument("config", help="config file path")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        help="resume from this checkpoint, or from the latest one in the work dir if no path",
    )
    parser.add_argument("--amp", action="store_true", help="mixed-precision training (GPU)")
    parser.add_argument("--no-validate", action="store_true", help="skip validation in training")
    parser.add_argument(
        "--auto-scale-lr", action="store_true", help="scale the lr with the actual batch size"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--diff-rank-seed", action="store_true", help="different seed per rank")
    parser.add_argument("--deterministic", action="store_true", help="deterministic cuDNN")
    runner_api.add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runner_api.set_local_rank(args.local_rank)
    cfg = runner_api.load_config(args.config, args.cfg_options)
    runner_api.set_work_dir(cfg, args.config, args.work_dir)
    cfg.launcher = args.launcher
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        runner_api.enable_amp(cfg)
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if cfg.get("randomness", None) is None or args.seed is not None:
        cfg.randomness = dict(
            seed=args.seed, diff_rank_seed=args.diff_rank_seed, deterministic=args.deterministic
        )
    runner_api.build_runner(cfg).train()


if __name__ == "__main__":
    main()
