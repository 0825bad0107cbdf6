"""The dataloader's transforms, registered into MMAction2's TRANSFORMS: windows and keypoints
read from the cache, packed into stream inputs.

The pose model's training transform (:mod:`gm_plugins.datasets.pose_training`) is not imported
here: it imports mmpose, and the pose configs import it themselves.
"""

from .loading import LoadCachedWindow, PackStreamInputs
from .skeleton import LoadCachedKeypoints

__all__ = ["LoadCachedKeypoints", "LoadCachedWindow", "PackStreamInputs"]
