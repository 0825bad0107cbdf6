"""The offline preprocessing chain, the paper's steps 1-3: decoding, background removal,
pose alignment, optical flow and the quality gate.

:mod:`.transforms` holds the registered transforms, :mod:`.model_runners` the OpenMMLab models
they run, :mod:`.chain` loads a chain config, :mod:`.streaming` streams one video through a
chain into the cache or memory and :mod:`.jobs` preprocesses a whole dataset with a pool of
workers.
"""

from . import streaming, transforms

__all__ = ["streaming", "transforms"]
