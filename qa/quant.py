"""Int8 linear layers with per-row activation scales, for fast and batch-independent CPU inference.

PyTorch's dynamic quantisation scales a whole batch's activations by one number, so a text's vector would
depend on its batch-mates. Here every token row gets its own scale and every output channel of the weight its
own, and the product runs as an int8 x int8 -> int32 matrix multiply (``torch._int_mm``): about 2-3x faster than
fp32 on a CPU, and a text encodes to the same vector whatever it is batched with.
"""
from __future__ import annotations

import torch
from torch import nn


class RowwiseInt8Linear(nn.Module):
    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()  # (out, in)
        scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        self.register_buffer("w_q", (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8).t().contiguous())
        self.register_buffer("w_scale", scale)
        self.register_buffer("bias", linear.bias.detach().float() if linear.bias is not None else None)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).float()
        rows = x2.shape[0]
        s = x2.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127.0
        xq = (x2 / s).round_().clamp_(-127, 127).to(torch.int8)
        if rows <= 16:  # _int_mm wants more than 16 rows; pad (padding rows do not touch the others)
            xq = torch.cat([xq, xq.new_zeros(17 - rows, xq.shape[1])])
        y = torch._int_mm(xq, self.w_q)[:rows].float()
        y = y * s * self.w_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)


def quantize_linears(model: nn.Module) -> nn.Module:
    """Replace every nn.Linear in ``model`` (in place) by a RowwiseInt8Linear."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Linear):
            setattr(model, name, RowwiseInt8Linear(child))
        else:
            quantize_linears(child)
    return model
