"""BD3-LM / MDLM DiT backbone with the exact tensor names of the released BD3-LM checkpoints.

Time conditioning is off (sigma is always 0) and adaLN is on, as in the released BD3-LM models,
so the conditioning vector is the constant c = silu(sigma_map(timestep_embedding(0))).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t, dim=256, max_period=10000):
    """DiT sinusoidal embedding: [cos(args), sin(args)]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SigmaMap(nn.Module):
    def __init__(self, cond_dim, freq_dim=256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def forward(self, sigma):
        return self.mlp(timestep_embedding(sigma, self.freq_dim))


class Rotary(nn.Module):
    def __init__(self, head_dim, base=10000):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq)

    def cos_sin(self, positions):
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)  # [T, head_dim]
        return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):
    # x: [B, H, T, d]; cos/sin: [T, d]
    return x * cos + rotate_half(x) * sin


def layer_norm(x, weight):
    return F.layer_norm(x, (x.shape[-1],)) * weight  # no bias, eps 1e-5


class EmbeddingLayer(nn.Module):
    def __init__(self, vocab_size, dim):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab_size, dim))
        nn.init.kaiming_uniform_(self.embedding, a=math.sqrt(5))

    def forward(self, ids):
        return self.embedding[ids]


class LN(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return layer_norm(x, self.weight)


class DDiTBlock(nn.Module):
    def __init__(self, dim, n_heads, cond_dim, mlp_ratio=4):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = LN(dim)
        self.attn_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.norm2 = LN(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim, bias=True),
            nn.GELU(approximate="tanh"),
            nn.Linear(mlp_ratio * dim, dim, bias=True),
        )
        self.adaLN_modulation = nn.Linear(cond_dim, 6 * dim, bias=True)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def forward(self, x, c, cos, sin, attn_mask):
        B, T, D = x.shape
        H = self.n_heads
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c)[:, None, :].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        qkv = self.attn_qkv(h).view(B, T, 3, H, D // H)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, T, d]
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        a = a.transpose(1, 2).reshape(B, T, D)
        x = x + gate1 * self.attn_out(a)
        h = self.norm2(x) * (1 + scale2) + shift2
        x = x + gate2 * self.mlp(h)
        return x


class DDiTFinalLayer(nn.Module):
    def __init__(self, dim, vocab_size, cond_dim):
        super().__init__()
        self.norm_final = LN(dim)
        self.linear = nn.Linear(dim, vocab_size)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.adaLN_modulation = nn.Linear(cond_dim, 2 * dim, bias=True)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c)[:, None, :].chunk(2, dim=-1)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class DiT(nn.Module):
    def __init__(self, vocab_size, hidden_dim, n_heads, n_blocks, cond_dim):
        super().__init__()
        self.vocab_embed = EmbeddingLayer(vocab_size, hidden_dim)
        self.sigma_map = SigmaMap(cond_dim)
        self.rotary_emb = Rotary(hidden_dim // n_heads)
        self.blocks = nn.ModuleList([DDiTBlock(hidden_dim, n_heads, cond_dim) for _ in range(n_blocks)])
        self.output_layer = DDiTFinalLayer(hidden_dim, vocab_size, cond_dim)

    def cond(self, batch):
        sigma = torch.zeros(1)
        c = F.silu(self.sigma_map(sigma))
        return c.expand(batch, -1)

    def forward(self, ids, positions, attn_mask, n_out=None, return_hidden=False):
        """ids [B,T]; positions [T] (RoPE positions); attn_mask bool [T,T] (True = may attend).
        Logits are computed for the first n_out positions (all if None)."""
        x = self.vocab_embed(ids)
        c = self.cond(ids.shape[0])
        cos, sin = self.rotary_emb.cos_sin(positions)
        hidden = [x]
        for blk in self.blocks:
            x = blk(x, c, cos, sin, attn_mask)
            hidden.append(x)
        if n_out is not None:
            x = x[:, :n_out]
        logits = self.output_layer(x, c)
        return (logits, hidden) if return_hidden else logits


class BD3LM(nn.Module):
    """Wrapper so state_dict keys are `backbone.*` like the released checkpoints."""

    def __init__(self, vocab_size, hidden_dim, n_heads, n_blocks, cond_dim, model_length, block_size):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, hidden_dim=hidden_dim, n_heads=n_heads, n_blocks=n_blocks,
                           cond_dim=cond_dim, model_length=model_length, block_size=block_size)
        self.backbone = DiT(vocab_size, hidden_dim, n_heads, n_blocks, cond_dim)
        self.mask_id = vocab_size - 1
        self.block_size = block_size
        self.model_length = model_length

    # ---- masks -------------------------------------------------------------------------
    @staticmethod
    def block_causal_mask(T, block_size):
        b = torch.arange(T) // block_size
        return b[None, :] <= b[:, None]  # [q, k]

    @staticmethod
    def train_mask(n, block_size):
        """Mask for concat(x_t, x_0), length 2n. True = query may attend key."""
        idx = torch.arange(2 * n)
        is_x0 = idx >= n
        blk = (idx % n) // block_size
        q_x0, k_x0 = is_x0[:, None], is_x0[None, :]
        q_b, k_b = blk[:, None], blk[None, :]
        block_diag = (~q_x0) & (~k_x0) & (q_b == k_b)          # x_t block b sees x_t block b
        offset_causal = (~q_x0) & k_x0 & (k_b < q_b)           # x_t block b sees x_0 blocks < b
        block_causal = q_x0 & k_x0 & (k_b <= q_b)              # x_0 block b sees x_0 blocks <= b
        return block_diag | offset_causal | block_causal

    # ---- forwards ----------------------------------------------------------------------
    def forward_block_causal(self, ids):
        T = ids.shape[1]
        return self.backbone(ids, torch.arange(T), self.block_causal_mask(T, self.block_size))

    def forward_likelihood(self, xt, x0, block_size=None, mask=None):
        n = xt.shape[1]
        bs = block_size or self.block_size
        if mask is None:
            mask = self.train_mask(n, bs)
        pos = torch.arange(n)
        positions = torch.cat([pos, pos])
        return self.backbone(torch.cat([xt, x0], dim=1), positions, mask, n_out=n)

    def subs_nll(self, logits, x0, masked):
        """Per-position -log p(x0) with the [MASK] logit set to -inf; 0 where not masked."""
        logits = logits.clone()
        logits[..., self.mask_id] = float("-inf")
        logp = torch.log_softmax(logits.float(), dim=-1)
        nll = -logp.gather(-1, x0[..., None]).squeeze(-1)
        return torch.where(masked, nll, torch.zeros_like(nll))
