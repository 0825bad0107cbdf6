"""Backbones from torchvision and timm as stream backbones, and fitting a stem to a stream's input.

A stream backbone is named in a config the way MMAction2's recognizers accept library models:
``dict(type='torchvision.resnet18')`` or ``dict(type='timm.mobilenetv3_small_100')``, with the
library's own keyword arguments next to ``type``. :func:`build_library_backbone` builds such a
config as one of the wrappers below, which return the network's last feature map (N, C, H, W)
instead of class scores. ``MultiStreamRecognizer`` calls it for these prefixes, so the wrappers
need no registry entry. No weights are downloaded unless the config asks (``weights=...`` for
torchvision, ``pretrained=True`` for timm).

:func:`replace_first_conv` lets a network built for RGB take another number of input channels
(2L stacked flow fields, 3T stacked frames): its first convolution is swapped for one whose
filters are the mean of the original filters over their input channels, repeated for every new
channel (TSN's cross-modality initialisation), so pretrained RGB filters carry over.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

#: Children of a torchvision classifier that turn its feature map into class scores.
_TORCHVISION_HEAD_NAMES = frozenset({"avgpool", "fc", "classifier", "head", "heads", "flatten"})
_TORCHVISION_HEAD_TYPES = (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Linear, nn.Flatten)
#: torchvision families whose forward is not the chain of their children, or whose maps are
#: channels-last: they cannot be cut into a feature extractor by dropping the head.
_TORCHVISION_UNSUPPORTED = ("vit_", "swin", "maxvit", "mvit")


def library_backbone_class(cfg: Mapping) -> type[nn.Module] | None:
    """The wrapper class for a config naming a torchvision or timm model; None for others."""
    type_name = cfg.get("type") if isinstance(cfg, Mapping) else None
    if isinstance(type_name, str):
        for prefix, wrapper in LIBRARY_PREFIXES.items():
            if type_name.startswith(prefix):
                return wrapper
    return None


def build_library_backbone(cfg: Mapping) -> nn.Module:
    """Build ``dict(type='torchvision.<name>', **kwargs)`` or ``dict(type='timm.<name>', ...)``.

    Example:
        ``dict(type='timm.resnet18', drop_rate=0.1)`` builds
        ``TimmBackbone(name='resnet18', drop_rate=0.1)``.
    """
    wrapper = library_backbone_class(cfg)
    if wrapper is None:
        raise ValueError(f"{cfg!r} names no model of {' or '.join(LIBRARY_PREFIXES)}")
    kwargs = dict(copy.deepcopy(cfg))
    type_name = kwargs.pop("type")
    name = type_name.partition(".")[2]
    if not name:
        raise ValueError(f"backbone type '{type_name}' names no model after the dot")
    return wrapper(name, **kwargs)


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


class TorchvisionBackbone(BaseModule):
    """A torchvision classification (or video) network without its pooling and classifier.

    The network is built by ``torchvision.models.get_model(name, weights=weights, **kwargs)``;
    its children up to the first pooling-to-vector or classifier child (``avgpool``, ``fc``,
    ``classifier``, ``head``) are kept under their torchvision names, so a torchvision state
    dict loads into this module (``init_cfg=dict(type='Pretrained', checkpoint=...)``), and
    run in order. Auxiliary classifiers (GoogLeNet, Inception v3) are dropped. Configs name
    it ``dict(type='torchvision.resnet18')``.

    Args:
        name (str): A torchvision model name, e.g. ``'resnet18'``, ``'mobilenet_v3_small'``,
            ``'efficientnet_b0'``, ``'r3d_18'`` (a 3D network, for ``clip3d`` streams).
        weights (str, optional): torchvision weights, e.g. ``'DEFAULT'`` (downloaded by
            torchvision). Defaults to None: random initialisation.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
        **kwargs: Other arguments of the torchvision model builder.

    Shapes:
        x: (N, 3, H, W) -> (N, C, H', W'), e.g. (N, 512, H/32, W/32) for ``resnet18``;
        (N, 3, T, H, W) -> (N, C, T', H', W') for video networks.
    """

    def __init__(
        self, name: str, weights: str | None = None, init_cfg: dict | None = None, **kwargs
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        import torchvision.models

        if name.startswith(_TORCHVISION_UNSUPPORTED):
            raise ValueError(
                f"torchvision.{name} is a transformer whose forward is not a chain of its "
                "layers, so it cannot serve as a feature-map backbone here; use a CNN, or a "
                "timm model (dict(type='timm.<name>') returns feature maps of transformers too)"
            )
        available = torchvision.models.list_models()
        if name not in available:
            raise ValueError(
                f"torchvision has no model '{name}'{_suggest(name, available)} "
                "(torchvision.models.list_models() lists them)"
            )
        network = torchvision.models.get_model(name, weights=weights, **kwargs)
        self.name = name
        self.config_type = f"torchvision.{name}"
        self.layer_names: list[str] = []
        for child_name, child in network.named_children():
            if child_name in _TORCHVISION_HEAD_NAMES or isinstance(child, _TORCHVISION_HEAD_TYPES):
                break
            if child_name.lower().startswith("aux"):
                continue
            self.add_module(child_name, child)
            self.layer_names.append(child_name)
        if not self.layer_names:
            raise ValueError(f"torchvision.{name} has no layers before its classifier")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, [T,] H, W) -> the last feature map (N, C, [T',] H', W')."""
        for layer_name in self.layer_names:
            x = getattr(self, layer_name)(x)
        return x


class TimmBackbone(BaseModule):
    """A timm network as a feature extractor: its last feature map (or those of ``out_indices``).

    Built by ``timm.create_model(name, pretrained=pretrained, features_only=True,
    out_indices=out_indices, **kwargs)``: timm keeps only the layers up to the requested
    stages (no pooling, no classifier, so no parameter is left without a gradient) and gives
    channels-first maps. Configs name it ``dict(type='timm.mobilenetv3_small_100')``.

    Args:
        name (str): A timm model name (``timm.list_models()``).
        pretrained (bool): Load timm's pretrained weights, downloaded by timm, or from a local
            file with ``pretrained_cfg_overlay=dict(file=...)``. Defaults to False.
        out_indices (Sequence[int]): Feature stages to return; negative counts from the end.
            Defaults to ``(-1,)``: the last stage. For timm's ResNets, index 0 is the stem and
            ``(3,)`` cuts after the third stage, like the demo's ``r18-3stage`` backbone.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
        **kwargs: Other arguments of ``timm.create_model`` (e.g. ``drop_rate``, ``img_size``).

    Shapes:
        x: (N, 3, H, W) -> (N, C, H / r, W / r), r the stage's reduction; a tuple of maps
        when ``out_indices`` names several stages.
    """

    def __init__(
        self,
        name: str,
        pretrained: bool = False,
        out_indices: Sequence[int] = (-1,),
        init_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        try:
            import timm
        except ImportError as error:
            raise ImportError(
                f"backbone 'timm.{name}' needs timm: pip install 'timm>=1.0,<2'"
            ) from error
        if not timm.is_model(name):
            raise ValueError(
                f"timm has no model '{name}'{_suggest(name, timm.list_models())} "
                "(timm.list_models() lists them)"
            )
        self.name = name
        self.config_type = f"timm.{name}"
        self.model = timm.create_model(
            name,
            pretrained=pretrained,
            features_only=True,
            out_indices=tuple(out_indices),
            **kwargs,
        )
        output_fmt = getattr(self.model, "output_fmt", "NCHW")
        self.channels_last = str(getattr(output_fmt, "value", output_fmt)) == "NHWC"

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """(N, 3, H, W) -> (N, C, H', W'), or a tuple of maps for several ``out_indices``."""
        maps = self.model(x)
        if self.channels_last:
            maps = [fmap.permute(0, 3, 1, 2).contiguous() for fmap in maps]
        return maps[0] if len(maps) == 1 else tuple(maps)


def first_conv_name(module: nn.Module) -> tuple[str, nn.modules.conv._ConvNd] | None:
    """The qualified name and module of the first convolution of ``module`` (its stem)."""
    for name, submodule in module.named_modules():
        if isinstance(submodule, nn.modules.conv._ConvNd):
            return name, submodule
    return None


def cross_modality_average(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Average conv filters over their input channels and repeat them ``in_channels`` times.

    Args:
        weight (Tensor): (C_out, C_in, k...) filters, e.g. an RGB stem (64, 3, 7, 7).
        in_channels (int): The new number of input channels.

    Returns:
        Tensor: (C_out, in_channels, k...) filters, every input channel the same mean filter.
    """
    mean = weight.mean(dim=1, keepdim=True)
    return mean.expand(-1, in_channels, *weight.shape[2:]).contiguous()


def replace_first_conv(module: nn.Module, in_channels: int) -> tuple[str, int]:
    """Give ``module``'s first convolution ``in_channels`` inputs, by cross-modality averaging.

    The convolution is replaced by a copy (same class, kernel, stride, bias) whose weight is
    :func:`cross_modality_average` of the original weight; the bias is kept.

    Returns:
        tuple: The qualified name of the replaced convolution and its former input channels.
    """
    found = first_conv_name(module)
    if found is None:
        raise ValueError(f"{type(module).__name__} has no convolution to take the input")
    name, conv = found
    if conv.groups != 1:
        raise ValueError(
            f"the first convolution of {type(module).__name__} ({name}) is grouped "
            f"(groups={conv.groups}), so its input channels cannot be changed by averaging"
        )
    replacement = copy.deepcopy(conv)
    replacement.weight = nn.Parameter(
        cross_modality_average(conv.weight.detach(), in_channels),
        requires_grad=conv.weight.requires_grad,
    )
    replacement.in_channels = in_channels
    parent_name, _, child_name = name.rpartition(".")
    parent = module.get_submodule(parent_name)
    setattr(parent, child_name, replacement)
    if isinstance(parent, ConvModule):  # it records its conv's input channels
        parent.in_channels = in_channels
    return name, conv.in_channels


def loads_weights_in_init(module: nn.Module) -> bool:
    """Whether ``module`` loads pretrained weights in ``init_weights()`` (not yet called).

    True for an mmengine ``init_cfg`` of type ``'Pretrained'`` and for MMAction2 backbones
    whose ``pretrained`` attribute names a checkpoint.
    """
    if getattr(module, "is_init", False):
        return False
    init_cfg = getattr(module, "init_cfg", None)
    init_cfgs = [init_cfg] if isinstance(init_cfg, Mapping) else list(init_cfg or [])
    if any(isinstance(cfg, Mapping) and cfg.get("type") == "Pretrained" for cfg in init_cfgs):
        return True
    pretrained = getattr(module, "pretrained", None)
    return isinstance(pretrained, str) and bool(pretrained)


#: Config type prefixes that name a model of another library, and the wrapper that builds it.
LIBRARY_PREFIXES: dict[str, type[nn.Module]] = {
    "torchvision.": TorchvisionBackbone,
    "timm.": TimmBackbone,
}
