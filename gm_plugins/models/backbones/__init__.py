"""Backbones of gm_plugins, registered into MMAction2's ``MODELS`` registry."""

from .c3d import C3DFeatures

__all__ = ["C3DFeatures"]
