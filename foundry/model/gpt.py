"""The GPT: token embedding, n_layer pre-norm blocks, final norm, language-model head.

Every part comes from a registry in foundry.model.modules, named in the config; each block is
built from its own layer's settings (`model.layers` may give some layers other components), and
the components keep the contract in foundry/model/protocols.py. `model.stages` (encoder, latent,
decoder stacks) decides how the blocks run: foundry/model/stages.py.

    model = GPT(cfg.model)                     # cfg.model.vocab_size must be set
    logits = model(idx)                        # (B, T) -> (B, T, vocab)
    logits = model(rows, doc_ids=doc_ids)      # packed rows: no attention across documents
    out = model.generate(idx, 50, temperature=0.8, top_k=40, stop_tokens={0})
    model.num_params(), model.flops_per_token()
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from foundry.config import layer_config
from foundry.model.modules import ATTENTION, FFNS, NORMS, POSITIONS
from foundry.model.modules.masks import packed_documents
from foundry.model.stages import Pipeline


class Block(nn.Module):
    def __init__(self, model_cfg, layer_index: int):
        super().__init__()
        cfg = layer_config(model_cfg, layer_index)  # this layer's settings
        self.layer_index, self.cfg = layer_index, cfg
        self.norm1 = NORMS[cfg.norm](cfg.n_embd, cfg)
        self.attn = ATTENTION[cfg.attention](cfg)
        self.norm2 = NORMS[cfg.norm](cfg.n_embd, cfg)
        self.ffn = FFNS[cfg.ffn](cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, position, cache=None, start=0, documents=None):  # (B, T, C) -> (B, T, C)
        x = x + self.drop(self.attn(self.norm1(x), position, cache, start, documents))
        return x + self.drop(self.ffn(self.norm2(x)))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg.vocab_size <= 0:
            raise ValueError("model.vocab_size must be set (the trainer takes it from the tokenizer)")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.position = POSITIONS[cfg.position](cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.pipeline = Pipeline(cfg)  # model.stages over the blocks (foundry/model/stages.py)
        self.norm_f = NORMS[cfg.norm](cfg.n_embd, cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        residual = {id(p) for p in self.residual_projections()}
        # GPT-2 init; the residual projections scaled by depth. One pass in module order.
        self.apply(lambda module: self._init_weights(module, id(module) in residual))
        for latent in self.pipeline.latents.values():
            latent.zero_init()

    def _init_weights(self, module, residual: bool):
        if isinstance(module, nn.Linear):
            std = 0.02 / math.sqrt(2 * self.cfg.n_layer) if residual else 0.02
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def residual_projections(self) -> list[nn.Linear]:
        """The linear layers that write into the residual stream, as each component lists them."""
        return [p for b in self.blocks for p in b.attn.residual_projections() + b.ffn.residual_projections()]

    def forward(self, idx, caches=None, start=0, doc_ids=None):
        """idx (B, T) token ids -> logits (B, T, vocab). `caches`: one dict per layer, for generation.
        `doc_ids` (B, T): packed rows, one id per document (contiguous runs); attention stays inside
        a document and positions restart at each document's first token."""
        B, T = idx.shape
        if start + T > self.cfg.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.cfg.block_size}")
        if doc_ids is not None and (caches is not None or start):
            raise ValueError("doc_ids (packed rows) is for training and scoring, not cached generation")
        documents = packed_documents(doc_ids) if doc_ids is not None else None
        x = self.wte(idx)  # (B, T, C)
        pos = torch.arange(start, start + T, device=idx.device) if documents is None else documents.positions[:, 0]
        pos_emb = self.position.embed(pos)
        if pos_emb is not None:
            x = x + pos_emb
        x = self.drop(x)
        x = self.pipeline(x, self._run_block, caches, start, documents, doc_ids, n_blocks=len(self.blocks))
        return self.lm_head(self.norm_f(x))

    def _run_block(self, i, x, caches, start, documents):
        cache = caches[i] if caches is not None else None
        if self.cfg.gradient_checkpointing and self.training:
            return checkpoint(self.blocks[i], x, self.position, cache, start, documents, use_reentrant=False)
        return self.blocks[i](x, self.position, cache, start, documents)

    def aux_loss(self):
        """Sum of auxiliary losses (MoE balance, router z-loss, mixer routers) from the last forward pass."""
        losses = [m.aux_loss for b in self.blocks for m in (b.attn, b.ffn) if m.aux_loss is not None]
        kl = self.pipeline.aux_loss()  # the latent stages' KL terms
        losses += [kl] if kl is not None else []
        return sum(losses) if losses else None

    def ffn_stats(self) -> dict:
        """{"layer_I/NAME": detached scalar} from each feed-forward's and mixer's last forward pass (MoE load,
        routed mixers' use, ...)."""
        return {**{f"layer_{b.layer_index}/{k}": v for b in self.blocks for m in (b.attn, b.ffn)
                   for k, v in m.stats.items()},
                **self.pipeline.stats()}  # "STAGE/kl" of each latent stage

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, stop_tokens=()):
        """Continue idx (B, T) with a KV cache; greedy when temperature == 0.

        Stops after max_new_tokens, at block_size, or once every row has produced a stop token.
        """
        was_training = self.training
        self.eval()
        caches = [{} for _ in self.blocks]
        logits = self(idx, caches, 0)[:, -1, :]
        finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        stop = torch.tensor(sorted(stop_tokens), dtype=torch.long, device=idx.device)
        for _ in range(max_new_tokens):
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                next_id = torch.multinomial(F.softmax(logits.float(), dim=-1), 1)
            idx = torch.cat([idx, next_id], dim=1)
            if len(stop):
                finished |= torch.isin(next_id.squeeze(1), stop)
                if finished.all():
                    break
            if idx.shape[1] >= self.cfg.block_size:
                break
            logits = self(next_id, caches, idx.shape[1] - 1)[:, -1, :]
        self.train(was_training)
        return idx

    def num_params(self, non_embedding=False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel() + self.position.embedding_params()
        return n

    def flops_per_token(self) -> int:
        """Training FLOPs per token: 6 N for the matmuls plus each mixer's own (6 T C for attention scores,
        PaLM; a sliding window's band; a state-space scan).

        N counts weights used in a matmul: embedding lookups are free, but a tied lm_head is not;
        a mixture-of-experts FFN counts only its top_k active experts (its `inactive_params` are out);
        an encoder stage's blocks count twice (foundry/model/stages.py).
        """
        c = self.cfg
        n = self.num_params(non_embedding=True) + (c.vocab_size * c.n_embd if c.tie_embeddings else 0)
        n -= sum(block.ffn.inactive_params() for block in self.blocks)
        runs = [1] * len(self.blocks)  # encoder stages run their blocks in both directions in training
        for i in self.pipeline.encoder_layers():
            runs[i] = 2
            n += sum(p.numel() for p in self.blocks[i].parameters()) - self.blocks[i].ffn.inactive_params()
        mixing = sum(r * b.attn.mixing_flops(b.cfg) for r, b in zip(runs, self.blocks))  # scores, scans (protocols.py)
        return int(6 * n + mixing)
