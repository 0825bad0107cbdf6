"""Classification head for the recognizer's fused (N, C) feature, of one stream or two."""

from __future__ import annotations

import torch
from mmaction.models.heads.base import BaseHead
from mmaction.registry import MODELS
from mmengine.model.weight_init import normal_init
from torch import nn


@MODELS.register_module()
class FusionClsHead(BaseHead):
    """Dropout and a linear classifier on a pooled (N, C) feature.

    ``loss``, ``predict`` and ``average_clip`` come from mmaction's ``BaseHead``, so
    ``predict`` sets ``pred_score`` (softmax probabilities with ``average_clips='prob'``,
    raw scores with ``None``) and ``pred_label`` like every mmaction head.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the fused feature.
        dropout_ratio (float): Dropout before the classifier. Defaults to 0.5.
        init_std (float): Std of the classifier's normal initialisation. Defaults to 0.01.
        with_fc (bool): Whether to classify. ``False`` for fusions that already output class
            scores (``LateFusion``); then ``in_channels`` must equal ``num_classes`` and the
            head only computes the loss and predictions. Defaults to True.
        loss_cls (dict): Loss config. Defaults to cross-entropy.
        topk (int | tuple[int]): Top-k accuracies logged with the loss. Defaults to (1,).
        average_clips (str, optional): ``'prob'``, ``'score'`` or None, see ``BaseHead``.
            Defaults to ``'prob'``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Shapes:
        x: (N, in_channels) -> (N, num_classes).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        dropout_ratio: float = 0.5,
        init_std: float = 0.01,
        with_fc: bool = True,
        loss_cls: dict | None = None,
        topk: int | tuple[int, ...] = (1,),
        average_clips: str | None = "prob",
        init_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        if loss_cls is None:
            loss_cls = dict(type="CrossEntropyLoss", loss_weight=1.0)
        super().__init__(
            num_classes,
            in_channels,
            loss_cls=loss_cls,
            topk=topk,
            average_clips=average_clips,
            init_cfg=init_cfg,
            **kwargs,
        )
        self.init_std = init_std
        self.with_fc = with_fc
        if not with_fc and in_channels != num_classes:
            raise ValueError(
                f"FusionClsHead with with_fc=False passes class scores through, so "
                f"in_channels ({in_channels}) must equal num_classes ({num_classes})"
            )
        self.dropout = nn.Dropout(p=dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.fc_cls = nn.Linear(in_channels, num_classes) if with_fc else None

    def init_weights(self) -> None:
        """Small normal classifier weights, like mmaction's TSN and I3D heads."""
        super().init_weights()
        if self.fc_cls is not None and self.init_cfg is None:
            normal_init(self.fc_cls, std=self.init_std)

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Classify fused features: (N, in_channels) -> (N, num_classes)."""
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"FusionClsHead expects (N, {self.in_channels}) features but got "
                f"{tuple(x.shape)}: set cls_head.in_channels to the fusion's out_channels"
            )
        if self.fc_cls is None:
            return x
        return self.fc_cls(self.dropout(x))
