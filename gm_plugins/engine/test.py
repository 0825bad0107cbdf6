"""Test a checkpoint with a config of this repository (any default scope).

Example:
    python tools/test.py CONFIG work_dirs/exp1/best.pth --work-dir work_dirs/exp1/test
"""

from __future__ import annotations

import argparse
import os.path as osp

from mmengine.dist import is_main_process

from gm_plugins.engine import runner as runner_api
from gm_plugins.utils.io import write_json_atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Test a gm_plugins, mmseg or mmpose model")
    parser.add_argument("config", help="config file path")
    parser.add_argument("checkpoint", help="checkpoint file saved by tools/train.py")
    parser.add_argument("--dump", help="save the raw predictions to this .pkl file")
    parser.add_argument("--metrics-out", help="also write the metrics to this .json file")
    runner_api.add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    runner_api.set_local_rank(args.local_rank)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f"Checkpoint not found: {args.checkpoint}. Train first with tools/train.py."
        )
    cfg = runner_api.load_config(args.config, args.cfg_options)
    runner_api.set_work_dir(cfg, args.config, args.work_dir)
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    if args.dump is not None:
        if not args.dump.endswith((".pkl", ".pickle")):
            raise ValueError(f"--dump {args.dump}: the file must end with .pkl or .pickle")
        dump_metric = dict(type="DumpResults", out_file_path=args.dump)
        evaluator = cfg.test_evaluator
        cfg.test_evaluator = (
            [*evaluator, dump_metric]
            if isinstance(evaluator, list)
            else [
                evaluator,
                dump_metric,
            ]
        )
    metrics = runner_api.build_runner(cfg).test()
    if is_main_process():  # every rank holds the gathered metrics; one reports them
        for name, value in metrics.items():
            print(f"{name}: {value}")
        if args.metrics_out:
            write_json_atomic(args.metrics_out, metrics)
    return metrics


if __name__ == "__main__":
    main()
