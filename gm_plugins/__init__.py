"""gm_plugins: automated classification of infant General Movements on the OpenMMLab stack.

Importing the package applies the stack's compatibility workarounds
(:mod:`gm_plugins.compat`) once and registers every component into MMAction2's
registries, so configs name them with ``default_scope = 'mmaction'`` and
``custom_imports = dict(imports=['gm_plugins'], allow_failed_imports=False)``.

The pose model's training transform is not imported here (it would import mmpose): the pose
configs import :mod:`gm_plugins.datasets.pose_training` themselves (the published pose model's
config names that path).
"""

from . import compat
from .version import __version__

compat.apply()

from . import datasets, engine, evaluation, models, preprocess  # noqa: E402  (compat first)

__all__ = ["__version__", "compat", "datasets", "engine", "evaluation", "models", "preprocess"]
