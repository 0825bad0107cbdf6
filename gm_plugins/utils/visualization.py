"""Small image helpers shared by the visualisation tools and the inference report."""

from __future__ import annotations

import cv2
import numpy as np


def flow_to_colour(flow: np.ndarray) -> np.ndarray:
    """Colour-code a flow field: (H, W, 2) flow in [-1, 1] -> (H, W, 3) uint8 RGB.

    Hue is the direction, brightness the magnitude (1 = full brightness).
    """
    flow = np.asarray(flow, np.float32)
    magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1], angleInDegrees=True)
    hsv = np.zeros((*flow.shape[:2], 3), np.uint8)
    hsv[..., 0] = (angle / 2).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(magnitude * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def mask_to_rgb(mask: np.ndarray) -> np.ndarray:
    """A (H, W) mask in [0, 1] (or bool) -> (H, W, 3) uint8 grey image."""
    grey = np.clip(np.asarray(mask, np.float32) * 255.0, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, -1)
