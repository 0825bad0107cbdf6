"""High-level entry points: building runners from configs, and inference."""

from .runner import add_common_args, build_runner, enable_amp, load_config, set_work_dir

__all__ = ["add_common_args", "build_runner", "enable_amp", "load_config", "set_work_dir"]
