"""MultiheadAttention with torch's parameters, masks and two paths.

Parameters and their state-dict names are torch's: `in_proj_weight` (3E, E) and
`in_proj_bias` when key and value have the query's width, else `q_proj_weight`,
`k_proj_weight` and `v_proj_weight`; `out_proj` (a Linear); `bias_k`, `bias_v` with
`add_bias_kv`. Masks follow torch too, which is the opposite of scaled_dot_product_attention's
convention: in `attn_mask` and `key_padding_mask` a True entry is a position NOT attended to,
and a float mask is added to the scores.

As in torch, `need_weights=True` computes the weights explicitly (a query row that can attend
to nothing gives nan there), and `need_weights=False` goes through
`scaled_dot_product_attention` (zeros for such a row).
"""

from __future__ import annotations

import math

from .. import _dtype, factory
from ..ops.join import cat
from ..tensor import Tensor
from . import functional as F
from . import init
from .linear import Linear
from .module import Module
from .parameter import Parameter


class NonDynamicallyQuantizableLinear(Linear):
    """torch's name for MultiheadAttention's output projection (a plain Linear), kept so the
    module prints as torch's does."""


class MultiheadAttention(Module):
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        for name, size in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(size, bool) or not isinstance(size, int):
                raise TypeError(f"{name} must be an integer, got {size!r}")
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        if embed_dim % num_heads:
            raise AssertionError("embed_dim must be divisible by num_heads")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = add_zero_attn

        def param(*shape: int) -> Parameter:
            return Parameter(factory.empty(*shape, device=device, dtype=dtype))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = param(3 * embed_dim, embed_dim)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = param(embed_dim, embed_dim)
            self.k_proj_weight = param(embed_dim, self.kdim)
            self.v_proj_weight = param(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = param(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(
            embed_dim, embed_dim, bias=bias, device=device, dtype=dtype
        )
        if add_bias_kv:
            self.bias_k = param(1, 1, embed_dim)
            self.bias_v = param(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """(attention output, weights averaged over heads, or per head, or None)."""
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        packed = self._qkv_same_embed_dim and query is key and key is value
        batched = query.ndim == 3
        if batched and self.batch_first:  # (N, L, E) -> (L, N, E), torch's inner layout
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if not batched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        tgt_len, bsz, embed_dim = query.shape
        if embed_dim != self.embed_dim:
            raise AssertionError(
                f"was expecting embedding dimension of {self.embed_dim}, but got {embed_dim}"
            )
        q, k, v = self._project(query, key, value, packed)
        attn_mask = _float_mask(attn_mask, q, "attn_mask")
        if attn_mask is not None and attn_mask.ndim == 2:
            attn_mask = attn_mask.unsqueeze(0)
        key_padding_mask = _float_mask(key_padding_mask, q, "key_padding_mask")
        if self.bias_k is not None:
            k = cat([k, self.bias_k.expand(1, bsz, embed_dim)])
            v = cat([v, self.bias_v.expand(1, bsz, embed_dim)])
            attn_mask = _one_more_key(attn_mask)
            key_padding_mask = _one_more_key(key_padding_mask)

        heads, head_dim = self.num_heads, self.head_dim
        q, k, v = (t.reshape(t.shape[0], bsz * heads, head_dim).transpose(0, 1) for t in (q, k, v))
        if self.add_zero_attn:
            zeros = factory.zeros(bsz * heads, 1, head_dim, dtype=k.dtype, device=k.device)
            k, v = cat([k, zeros], dim=1), cat([v, zeros], dim=1)
            attn_mask = _one_more_key(attn_mask)
            key_padding_mask = _one_more_key(key_padding_mask)
        src_len = k.shape[1]
        if key_padding_mask is not None:  # (N, S) -> (N * heads, 1, S), added to attn_mask
            padding = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, heads, 1, src_len)
            padding = padding.reshape(bsz * heads, 1, src_len)
            attn_mask = padding if attn_mask is None else attn_mask + padding

        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q * math.sqrt(1.0 / head_dim)) @ k.transpose(-2, -1)
            if attn_mask is not None:
                scores = attn_mask + scores
            weights = F.softmax(scores, dim=-1)
            if dropout_p > 0.0:
                weights = F.dropout(weights, p=dropout_p)
            out = weights @ v  # (N * heads, L, head_dim)
            out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
            weights = weights.reshape(bsz, heads, tgt_len, src_len)
            if average_attn_weights:
                weights = weights.mean(dim=1)
        else:
            if attn_mask is not None:  # (1 or N * heads, L, S) -> broadcastable (.., L, S)
                if attn_mask.shape[0] == 1:
                    attn_mask = attn_mask.unsqueeze(0)
                else:
                    attn_mask = attn_mask.reshape(bsz, heads, -1, src_len)
            qh, kh, vh = (t.reshape(bsz, heads, t.shape[1], head_dim) for t in (q, k, v))
            out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask, dropout_p)
            out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
            weights = None
        out = F.linear(out, self.out_proj.weight, self.out_proj.bias)
        out = out.reshape(tgt_len, bsz, embed_dim)
        if not batched:
            out = out.squeeze(1)
            weights = weights.squeeze(0) if weights is not None else None
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _project(
        self, query: Tensor, key: Tensor, value: Tensor, packed: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v through their input projections: for self-attention (`packed`) one product
        with the packed weight, as torch does; else slices of it, or the separate weights."""
        e = self.embed_dim
        b = self.in_proj_bias
        if packed:
            qkv = F.linear(query, self.in_proj_weight, b)
            return qkv[..., :e], qkv[..., e : 2 * e], qkv[..., 2 * e :]
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:e], w[e : 2 * e], w[2 * e :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)


def _float_mask(mask: Tensor | None, like: Tensor, name: str) -> Tensor | None:
    """torch's _canonical_mask: a boolean mask (True = not attended) as -inf and 0 in the
    scores' dtype; a float mask as it is."""
    if mask is None:
        return None
    if mask.dtype == _dtype.bool_:
        zeros = factory.zeros(*mask.shape, dtype=like.dtype, device=like.device)
        return zeros.masked_fill(mask, float("-inf"))
    if not mask.is_floating_point():
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask


def _one_more_key(mask: Tensor | None) -> Tensor | None:
    """A mask widened by one attended key (a zero column), for bias_k / add_zero_attn."""
    return None if mask is None else F.pad(mask, (0, 1))
