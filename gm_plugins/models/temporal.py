"""Temporal models in the fusion slot of the recognizer: features of each time step, in order.

The fusion modules of :mod:`gm_plugins.models.fusion` average the time axis away. The modules
here keep it: ``LSTMFusion`` reads the per-frame features of a ``segments2d`` (or ``clip3d``)
stream as a sequence, the CNN + LSTM baseline.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from mmaction.registry import MODELS
from torch import nn

from .fusion import BaseFusion


@MODELS.register_module()
class LSTMFusion(BaseFusion):
    """Spatially pool each time step's feature map and run an LSTM over the steps in order.

    (N, C, T, H, W) maps -> spatial average -> (N, T, C) -> LSTM -> the last hidden state of
    the top layer (N, hidden_channels), for ``FusionClsHead``. With two streams, their features
    of the same step are concatenated (the streams must have equal T), in ``in_channels`` order.

    Args:
        in_channels (Mapping[str, int]): Channels per stream, e.g. ``dict(rgb=256)``.
        hidden_channels (int): LSTM hidden size. Defaults to 256.
        num_layers (int): Stacked LSTM layers. Defaults to 1.
        bidirectional (bool): Also run the steps backwards; the output is then the forward
            direction's last state and the backward direction's state at the first step,
            concatenated (2 * hidden_channels). Defaults to False.
        dropout (float): Dropout between stacked LSTM layers (needs ``num_layers > 1``).
            Defaults to 0.
        init_cfg (dict, optional): Initialisation config; by default PyTorch's LSTM
            initialisation. Defaults to None.

    Shapes:
        feats: ``{stream: (N, C_s, T, H, W)}`` -> (N, out_channels), where ``out_channels`` is
        ``hidden_channels`` (times 2 if ``bidirectional``).
    """

    def __init__(
        self,
        in_channels: Mapping[str, int],
        hidden_channels: int = 256,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        init_cfg: dict | None = None,
    ) -> None:
        if in_channels is None:
            raise TypeError("LSTMFusion needs in_channels, e.g. dict(rgb=256)")
        super().__init__(in_channels, init_cfg=init_cfg)
        if hidden_channels < 1 or num_layers < 1:
            raise ValueError(
                f"hidden_channels and num_layers must be >= 1, got {hidden_channels}, {num_layers}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if dropout > 0 and num_layers == 1:
            raise ValueError(
                "LSTMFusion.dropout acts between stacked LSTM layers: set num_layers > 1, or "
                "dropout=0 and use the head's dropout_ratio"
            )
        self.hidden_channels = int(hidden_channels)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.out_channels = self.hidden_channels * (2 if self.bidirectional else 1)
        self.lstm = nn.LSTM(
            input_size=sum(self.in_channels.values()),
            hidden_size=self.hidden_channels,
            num_layers=self.num_layers,
            batch_first=True,
            dropout=float(dropout),
            bidirectional=self.bidirectional,
        )

    def sequences(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Check the streams and turn their maps into one (N, T, sum of C_s) sequence."""
        name = type(self).__name__
        sequences = {}
        for stream, fmap in self.check_streams(feats).items():
            if fmap.dim() != 5:
                raise ValueError(
                    f"{name} needs a time axis, but the {stream} stream gave a feature map of "
                    f"shape {tuple(fmap.shape)}: set {stream}_input='segments2d' (a 2D backbone "
                    "per frame) or 'clip3d', giving (N, C, T, H, W)"
                )
            sequences[stream] = fmap.mean(dim=(3, 4)).transpose(1, 2)  # (N, T, C)
        lengths = {stream: sequence.shape[1] for stream, sequence in sequences.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"{name} concatenates the streams step by step, but their time steps differ: "
                f"{lengths}; give the streams clips of equal length"
            )
        return torch.cat(list(sequences.values()), dim=2)

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``{stream: (N, C_s, T, H, W)}`` -> (N, out_channels), the LSTM's last state."""
        _, (hidden, _) = self.lstm(self.sequences(feats))
        # hidden: (num_layers * directions, N, hidden); the top layer's directions come last.
        if self.bidirectional:
            return torch.cat([hidden[-2], hidden[-1]], dim=1)
        return hidden[-1]
