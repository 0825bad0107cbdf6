"""How a stream's input reaches its backbone, for :class:`MultiStreamRecognizer`.

The stream layouts (``stack2d``, ``segments2d``, ``clip3d``) and the input and feature shaping
they imply, choosing a layout from the built backbone, and the helpers the recognizer fits its
parts with: building a backbone, finding its first convolution, checking constructor arguments
and registered types, and describing backbones and their outputs in messages.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping

import torch
from mmaction.registry import MODELS
from torch import nn

from ..backbones.library_backbones import build_library_backbone, library_backbone_class

#: How a stream's (N, T, C, H, W) input reaches its backbone:
#: ``stack2d``: time stacked into channels, (N, T*C, H, W) (x0, y0, x1, y1, ... for flow);
#: ``segments2d``: every time step separately, (N*T, C, H, W), features restacked along time
#: (TSN/TSM style); ``clip3d``: a clip (N, C, T, H, W) for 3D backbones.
STREAM_LAYOUTS = ("stack2d", "segments2d", "clip3d")
#: The layout value that picks one from the built backbone (see :func:`resolve_layout`).
AUTO_LAYOUT = "auto"


def check_registered(cfg: Mapping, role: str) -> None:
    """Raise a clear error when ``cfg['type']`` is not a registered model, suggesting names."""
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise TypeError(f"{role} must be a config dict with a 'type' key, got {cfg!r}")
    type_name = cfg["type"]
    if not isinstance(type_name, str) or MODELS.get(type_name) is not None:
        return
    short_name = type_name.rpartition(".")[2]
    close = difflib.get_close_matches(short_name, sorted(MODELS.module_dict), n=3, cutoff=0.6)
    if close:
        alternatives = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
        hint = f"did you mean {alternatives}?"
    else:
        hint = "is the module that registers it listed in custom_imports?"
    raise ValueError(
        f"{role} type '{type_name}' is not registered in {MODELS.scope}::{MODELS.name}; {hint}"
    )


def config_class(cfg: Mapping) -> type | None:
    """The class a model config builds: a registered type, a class, or a library wrapper."""
    library = library_backbone_class(cfg)
    if library is not None:
        return library
    type_name = cfg["type"]
    return MODELS.get(type_name) if isinstance(type_name, str) else type_name


def build_backbone(cfg: Mapping) -> nn.Module:
    """Build a registered backbone, or a torchvision/timm one (``type='torchvision.<name>'``)."""
    if library_backbone_class(cfg) is not None:
        return build_library_backbone(cfg)
    return MODELS.build(cfg)


def first_conv(module: nn.Module) -> nn.modules.conv._ConvNd | None:
    """The first convolution of ``module`` in definition order (a backbone's stem), if any."""
    for submodule in module.modules():
        if isinstance(submodule, nn.modules.conv._ConvNd):
            return submodule
    return None


def accepts_argument(module_or_class: nn.Module | type | None, name: str) -> bool:
    """Whether a class (or the class of a module) takes the constructor argument ``name``.

    A constructor with ``**kwargs`` is followed to its base classes (``ResNetTSM`` passes
    ``in_channels`` on to ``ResNet``).
    """
    cls = module_or_class if isinstance(module_or_class, type) else type(module_or_class)
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters
        if name in parameters:
            return True
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return False
    return False


def resolve_layout(backbone: nn.Module, layout: str) -> str:
    """The layout of a stream: ``layout`` itself, or for ``'auto'`` the one the backbone takes.

    ``'auto'`` picks ``'clip3d'`` for a backbone whose first convolution is 3D, ``'segments2d'``
    for a 2D backbone that shifts features across ``num_segments`` segments (TSM) and
    ``'stack2d'`` for other 2D backbones.
    """
    if layout != AUTO_LAYOUT:
        return layout
    if isinstance(first_conv(backbone), nn.Conv3d):
        return "clip3d"
    if isinstance(getattr(backbone, "num_segments", None), int):
        return "segments2d"
    return "stack2d"


def arrange_stream_input(x: torch.Tensor, layout: str) -> torch.Tensor:
    """Lay a stream's (N, T, C, H, W) input out for its backbone (see ``STREAM_LAYOUTS``)."""
    batch, steps, channels, height, width = x.shape
    if layout == "stack2d":
        return x.reshape(batch, steps * channels, height, width)
    if layout == "segments2d":
        return x.reshape(batch * steps, channels, height, width)
    return x.permute(0, 2, 1, 3, 4).contiguous()


def arrange_stream_feature(
    feature: torch.Tensor | tuple, layout: str, batch: int, steps: int
) -> torch.Tensor:
    """Bring a backbone's output to (N, C, H, W) or (N, C, T, H, W).

    Backbones with several ``out_indices`` return a tuple; the deepest map is fused.
    ``segments2d`` features (N*T, C, H, W) are restacked to (N, C, T, H, W).
    """
    if isinstance(feature, (tuple, list)):
        feature = feature[-1]
    if layout == "segments2d" and feature.dim() == 4:
        _, channels, height, width = feature.shape
        feature = feature.view(batch, steps, channels, height, width).permute(0, 2, 1, 3, 4)
    return feature


def backbone_name(backbone: nn.Module) -> str:
    """How configs name a backbone: its class, or ``'timm.<name>'`` for library wrappers."""
    return getattr(backbone, "config_type", type(backbone).__name__)


def describe_output(output) -> str:
    """A backbone's output as shapes: a tensor's shape, a list or tuple of those, or the type."""
    if isinstance(output, torch.Tensor):
        return str(tuple(output.shape))
    if isinstance(output, (list, tuple)):
        return "[" + ", ".join(describe_output(item) for item in output) + "]"
    return type(output).__name__


def describe_map(feature: torch.Tensor) -> str:
    """(N, C, [T,] H, W) -> ``'C x [T x] H x W'``, e.g. ``'256x4x4'``."""
    return "x".join(str(size) for size in feature.shape[1:])
