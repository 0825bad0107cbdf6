"""High-level entry points: runners built from configs (:mod:`.runner`), preprocessing a dataset
(:mod:`.preprocessing`), cross-validation runs (:mod:`.cross_validation`), the shipped
experiments (:mod:`.experiments`) and report figures (:mod:`.reports`)."""

from .runner import add_common_args, build_runner, enable_amp, load_config, set_work_dir

__all__ = ["add_common_args", "build_runner", "enable_amp", "load_config", "set_work_dir"]
