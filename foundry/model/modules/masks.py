"""What the attention components share: masks, packed-document bookkeeping and the SDPA call.

    causal_mask(q_pos, k_pos, window=0)        -> (Tq, Tk) bool, True where a query may attend
    attention_mask(q_pos, k_pos, bias, allowed) -> what SDPA takes: the bool mask, or the bias
                                                   (H, Tq, Tk) with -inf where not allowed
    documents = packed_documents(doc_ids)       # packed rows (data.packing: bin), see Documents
    sdpa(q, k, v, is_causal=True)               # F.scaled_dot_product_attention, fp32 on a bf16 CPU

Positions may carry leading batch dimensions ((B, 1, T) for packed rows): the masks then get them too.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Documents:
    """Rows packed with several documents: attention stays inside a document, positions restart."""
    positions: torch.Tensor  # (B, 1, T) position of each token within its document
    same: torch.Tensor       # (B, 1, T, T) True where query and key tokens lie in the same document


def packed_documents(doc_ids) -> Documents:
    """doc_ids (B, T): equal ids for the tokens of one document, each document one contiguous run."""
    B, T = doc_ids.shape
    index = torch.arange(T, device=doc_ids.device).expand(B, T)
    starts = torch.ones_like(doc_ids, dtype=torch.bool)
    starts[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    first = torch.cummax(torch.where(starts, index, 0), dim=1).values  # index of each run's first token
    same = doc_ids[:, :, None] == doc_ids[:, None, :]
    return Documents((index - first)[:, None, :], same[:, None])


def causal_mask(q_pos, k_pos, window: int = 0):
    """Boolean (Tq, Tk) mask, True where a query may attend; `window` > 0 limits look-back."""
    allowed = k_pos[..., None, :] <= q_pos[..., :, None]
    if window > 0:
        allowed = allowed & (q_pos[..., :, None] - k_pos[..., None, :] < window)
    return allowed


def attention_mask(q_pos, k_pos, bias, allowed):
    """Combine a boolean mask (Tq, Tk) and an optional additive bias (H, Tq, Tk) for SDPA."""
    if bias is None:
        return allowed
    return bias.masked_fill(~allowed, float("-inf"))


def sdpa(q, k, v, **kwargs):
    """F.scaled_dot_product_attention; on a CPU under bf16 autocast it runs in fp32 (then casts back):
    the CPU flash kernel's bf16 backward is many times slower than its fp32 one (measured 15x on the
    shakespeare_char model, bench/cpu_bf16.py), while the matmuls around it gain from bf16."""
    if q.device.type != "cpu" or q.dtype == torch.float32:
        return F.scaled_dot_product_attention(q, k, v, **kwargs)
    mask = kwargs.get("attn_mask")
    if mask is not None and mask.dtype != torch.bool:
        kwargs["attn_mask"] = mask.float()
    with torch.autocast("cpu", enabled=False):
        return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), **kwargs).to(q.dtype)
