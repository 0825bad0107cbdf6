"""A training transform for the pose model: show it infants on black, as PoseAlignment does.

PoseAlignment estimates keypoints on background-removed frames, so the pose model should see such
frames in training too. ``BlackOutBackground`` (registered in mmpose's TRANSFORMS) multiplies a
training image by its ground-truth body mask, blurred like a soft mask, with probability ``prob``.

Only the pose-model configs import this module (``configs/preprocess/td-hm_*``:
``custom_imports = dict(imports=['gm_plugins.datasets.pose_training'])``); ``import gm_plugins``
does not, so the classifier's configs and tools never import mmpose for it.
"""

from __future__ import annotations

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpose.registry import TRANSFORMS as MMPOSE_TRANSFORMS


@MMPOSE_TRANSFORMS.register_module()
class BlackOutBackground(BaseTransform):
    """Black out the background of an image using its mask file.

    The mask path is the image path with ``path_replace[0]`` replaced by ``path_replace[1]``:
    by default ``DATA/mmpose/images/train/x.png`` -> ``DATA/mmseg/ann_dir/train/x.png``
    (0 background, >0 infant), the layout of the synthetic dataset. Masks follow the image
    path, so overriding the dataset's ``data_root`` needs no change here.

    Required keys:
        - img ((H, W, 3) uint8)
        - img_path

    Modified keys:
        - img (background black with probability ``prob``)

    Args:
        path_replace (tuple[str, str]): (image path part, mask path part).
            Defaults to ``('mmpose/images', 'mmseg/ann_dir')``.
        prob (float): probability of blacking out an image. Defaults to 0.7.
        blur (int): odd Gaussian kernel size softening the mask edge; 1 keeps it hard.
            Defaults to 5.
    """

    def __init__(
        self,
        path_replace: tuple[str, str] = ("mmpose/images", "mmseg/ann_dir"),
        prob: float = 0.7,
        blur: int = 5,
    ) -> None:
        self.path_replace = tuple(path_replace)
        self.prob = prob
        self.blur = blur

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        mask_path = results["img_path"].replace(*self.path_replace)
        mask = cv2.imread(mask_path, cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise FileNotFoundError(f"no mask {mask_path} for {results['img_path']}")
        soft = (mask > 0).astype(np.float32)
        if self.blur > 1:
            soft = cv2.GaussianBlur(soft, (self.blur, self.blur), 0)
        results["img"] = (results["img"] * soft[..., None]).astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(path_replace={self.path_replace}, prob={self.prob}, "
            f"blur={self.blur})"
        )
