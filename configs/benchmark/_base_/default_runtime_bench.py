# Runtime of the benchmark's classifiers: the CPU demo runtime, also importing mmpose's models
# for the RGB stream of rgb-r18c32.py (mmpose.ResNet).
_base_ = ["../../_base_/default_runtime_demo.py"]

custom_imports = dict(imports=["gm_plugins", "mmpose.models"], allow_failed_imports=False)
