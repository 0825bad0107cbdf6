"""Backbones of gm_plugins, registered into MMAction2's ``MODELS`` registry, and the wrappers
that make torchvision and timm models stream backbones (``dict(type='torchvision.resnet18')``).
"""

from .c3d import C3DFeatures
from .library_backbones import (
    TimmBackbone,
    TorchvisionBackbone,
    build_library_backbone,
    cross_modality_average,
    library_backbone_class,
    loads_weights_in_init,
    replace_first_conv,
)

__all__ = [
    "C3DFeatures",
    "TimmBackbone",
    "TorchvisionBackbone",
    "build_library_backbone",
    "cross_modality_average",
    "library_backbone_class",
    "loads_weights_in_init",
    "replace_first_conv",
]
