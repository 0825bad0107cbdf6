"""Train a model from a config of this repository (any default scope).

Examples:
    python tools/train.py configs/gm/<config>.py --work-dir work_dirs/exp1
    python tools/train.py CONFIG --resume            # resume from the latest checkpoint
    python tools/train.py CONFIG --cfg-options train_dataloader.batch_size=8
    python tools/train.py CONFIG --test-after metrics.json  # then test the best checkpoint

A run killed at any point and resumed with ``--resume`` ends with the same checkpoints, best
checkpoint and test metrics as one never stopped (epoch-based loops; see
:mod:`gm_plugins.engine.hooks`): every config gets ``ExactResumeHook``, and the training loader
starts seeded workers each epoch instead of persistent ones.
"""

from __future__ import annotations

import argparse
import copy
import json
import os.path as osp

from mmengine.dist import is_main_process

from gm_plugins.engine import enable_exact_resume
from gm_plugins.engine import runner as runner_api
from gm_plugins.utils.io import write_json_atomic, write_text_atomic

TRAINING_FINISHED = "training_finished"


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
    parser.add_argument(
        "--test-after",
        metavar="JSON",
        help="after training, test the best checkpoint (else the last) in the same process "
        "and write the test metrics to this file",
    )
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
        # None when the work dir holds no checkpoint yet: training starts from scratch.
        cfg.resume, cfg.load_from = True, runner_api.latest_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if cfg.get("randomness", None) is None or args.seed is not None:
        cfg.randomness = dict(
            seed=args.seed, diff_rank_seed=args.diff_rank_seed, deterministic=args.deterministic
        )
    enable_exact_resume(cfg)  # a killed run resumed with --resume trains as if never stopped
    finished = osp.join(cfg.work_dir, TRAINING_FINISHED)
    schedule = json.dumps(cfg.train_cfg.to_dict(), sort_keys=True, default=str)
    if args.resume is not None and _finished_with(finished, schedule):
        # An early-stopped run would otherwise train on from its last checkpoint. A longer
        # schedule (e.g. --cfg-options train_cfg.max_epochs=...) does train on.
        print(f"{cfg.work_dir}: training with this train_cfg already finished; not resuming")
    else:
        runner_api.build_runner(cfg).train()
        if is_main_process():
            write_text_atomic(finished, schedule)
    if args.test_after:
        test_best(cfg, args.test_after)


def _finished_with(marker: str, schedule: str) -> bool:
    """Whether the work dir's last training ended with the same ``train_cfg``."""
    if not osp.isfile(marker):
        return False
    with open(marker) as stream:
        return stream.read() == schedule


def test_best(cfg, metrics_out: str) -> dict:
    """Test the best (else last) checkpoint of ``cfg.work_dir``; write the metrics as JSON."""
    test_cfg = copy.deepcopy(cfg)
    test_cfg.load_from = runner_api.best_or_last_checkpoint(cfg.work_dir)
    test_cfg.resume = False
    test_cfg.work_dir = osp.join(cfg.work_dir, "test")
    metrics = runner_api.build_runner(test_cfg).test()
    metrics["checkpoint"] = test_cfg.load_from
    if is_main_process():
        write_json_atomic(metrics_out, metrics)
    return metrics


if __name__ == "__main__":
    main()
