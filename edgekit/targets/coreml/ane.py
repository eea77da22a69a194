"""The Apple Neural Engine layout of an EdgeModel (``--ane``), after apple/ml-ane-transformers.

Principles from Apple's "Deploying Transformers on the Apple Neural Engine" and its reference code:

* activations are (B, C, 1, S): channels first, the sequence on the last axis, which the ANE
  keeps contiguous in 64-byte-aligned rows;
* every linear layer is a 1x1 ``Conv2d`` (same weights, reshaped to [out, in, 1, 1]);
* attention is split per head with ``split`` + ``einsum`` instead of reshape/transpose into a
  (B, heads, S, d) tensor, which the ANE would otherwise copy on every layer;
* LayerNorm is computed over the channel axis explicitly, with an epsilon that is not flushed to
  zero in fp16 (1e-12 is; Apple uses 1e-7).

Inputs and outputs keep the plain model's names, dtypes and shapes ([1, S] in; [1, S, ...] out):
the layout changes only between the embedding and the head. The model reuses the EdgeModel's own
weights, including the masked-LM and question-answering heads.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from edgekit.model.modeling import MASK_VALUE, EdgeModel, _ACTIVATIONS
from edgekit.core.tasks import Task

# fp16's smallest normal is 6.1e-5 and its smallest subnormal 6e-8: 1e-12 vanishes. apple/
# ml-ane-transformers uses 1e-7 for DistilBERT; the effect on fp32 outputs is below 1e-5.
ANE_MIN_EPS = 1e-7


def _conv(linear: nn.Linear) -> nn.Conv2d:
    conv = nn.Conv2d(linear.in_features, linear.out_features, kernel_size=1, bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.detach()[:, :, None, None])
        if linear.bias is not None:
            conv.bias.copy_(linear.bias.detach())
    return conv


class LayerNormANE(nn.Module):
    """LayerNorm over the channel axis of a (B, C, 1, S) tensor."""

    def __init__(self, norm: nn.LayerNorm, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(norm.weight.detach().clone())
        self.bias = nn.Parameter(norm.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zero_mean = x - x.mean(dim=1, keepdim=True)
        denom = (zero_mean * zero_mean).mean(dim=1, keepdim=True).add(self.eps).rsqrt()
        return zero_mean * denom * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class LayerANE(nn.Module):
    def __init__(self, layer: nn.Module, eps: float) -> None:
        super().__init__()
        self.num_heads, self.head_dim = layer.num_heads, layer.head_dim
        self.q, self.k, self.v, self.o = _conv(layer.q), _conv(layer.k), _conv(layer.v), _conv(layer.o)
        self.attn_norm = LayerNormANE(layer.attn_norm, eps)
        self.ffn_in, self.ffn_out = _conv(layer.ffn_in), _conv(layer.ffn_out)
        self.ffn_norm = LayerNormANE(layer.ffn_norm, eps)
        self.act = layer.act

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        # x: (B, C, 1, S); key_bias: (B, S_k, 1, 1), added to scores laid out as (B, S_k, 1, S_q).
        q, k, v = self.q(x), self.k(x), self.v(x)
        scale = 1.0 / math.sqrt(self.head_dim)
        # Exactly Apple's equations: coremltools lowers these two einsums to single MIL einsum ops,
        # while other spellings become transpose/reshape/matmul chains. K is transposed once.
        k_t = k.transpose(1, 3)  # (B, S_k, 1, C)
        heads = []
        for qh, kh, vh in zip(q.split(self.head_dim, dim=1), k_t.split(self.head_dim, dim=3), v.split(self.head_dim, dim=1)):
            scores = torch.einsum("bchq,bkhc->bkhq", qh, kh) * scale + key_bias
            weights = scores.softmax(dim=1)
            heads.append(torch.einsum("bkhq,bchk->bchq", weights, vh))
        x = self.attn_norm(x + self.o(torch.cat(heads, dim=1)))
        return self.ffn_norm(x + self.ffn_out(self.act(self.ffn_in(x))))


class ANEModel(nn.Module):
    """``forward(input_ids, attention_mask[, token_type_ids])`` -> the EdgeModel's outputs, ANE layout inside."""

    def __init__(self, model: EdgeModel) -> None:
        super().__init__()
        cfg = model.config
        self.task, self.config = model.task, cfg
        self.eps = max(cfg.layer_norm_eps, ANE_MIN_EPS)
        self.input_names, self.output_names = model.input_names, model.output_names
        # The embedding lookup is a gather in any layout; reuse the plain module (a copy) without
        # its LayerNorm, which runs channels-first after the single layout change.
        self.embeddings = copy.deepcopy(model.embeddings)
        self.embeddings.norm = nn.Identity()
        self.emb_norm = LayerNormANE(model.embeddings.norm, self.eps)
        self.layers = nn.ModuleList(LayerANE(layer, self.eps) for layer in model.layers)
        head = model.head
        self.act = _ACTIVATIONS[cfg.activation]
        if self.task == Task.MASKED_LM:
            self.transform, self.decoder = _conv(head.transform), _conv(head.decoder)
            self.head_norm = LayerNormANE(head.norm, self.eps)
        elif self.task == Task.SEQUENCE_CLASSIFICATION:
            self.pre, self.classifier = _conv(head.pre), _conv(head.classifier)
            self.pre_act = head.pre_act
        elif self.task == Task.QUESTION_ANSWERING:
            self.qa = _conv(head.qa)
        elif self.task == Task.TOKEN_CLASSIFICATION:
            self.classifier = _conv(head.classifier)
        elif self.task == Task.FEATURE_EXTRACTION:
            self.normalize = head.normalize

    @classmethod
    def from_edge_model(cls, model: EdgeModel) -> ANEModel:
        """Build the ANE layout from ``model``'s weights (``model`` itself is not changed)."""
        return cls(model).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        x = self.embeddings(input_ids, token_type_ids)
        # The single layout change on the way in: (B, S, C) -> (B, C, 1, S).
        x = x.transpose(1, 2).unsqueeze(2)
        x = self.emb_norm(x)
        mask = attention_mask.to(x.dtype)
        # Apple's additive key mask: exp(-1e4) is exactly 0 in fp16/fp32, so this equals the plain
        # model's select, and an add is the cheapest op on the ANE (only weights are compressed here).
        key_bias = ((1.0 - mask) * MASK_VALUE)[:, :, None, None]  # (B, S_k, 1, 1)
        for layer in self.layers:
            x = layer(x, key_bias)
        return self._head(x, mask)

    @staticmethod
    def _tokens_last(t: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, S) -> (B, S, C): the plain model's per-token layout, at the output only."""
        return t.squeeze(2).transpose(1, 2)

    def _head(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.task == Task.MASKED_LM:
            h = self.head_norm(self.act(self.transform(x)))
            return (self._tokens_last(self.decoder(h)),)
        if self.task == Task.SEQUENCE_CLASSIFICATION:
            cls = x[:, :, :, :1]
            return (self.classifier(self.pre_act(self.pre(cls))).flatten(1),)
        if self.task == Task.QUESTION_ANSWERING:
            logits = self.qa(x)  # (B, 2, 1, S)
            return logits[:, 0, 0, :], logits[:, 1, 0, :]
        if self.task == Task.TOKEN_CLASSIFICATION:
            return (self._tokens_last(self.classifier(x)),)
        m = mask[:, None, None, :]  # (B, 1, 1, S)
        emb = (x * m).sum(dim=(2, 3)) / m.sum(dim=(2, 3)).clamp(min=1e-9)
        if self.normalize:
            emb = F.normalize(emb, dim=-1, eps=1e-12)
        return self._tokens_last(x), emb
