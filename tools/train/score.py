"""Held-out NLL upper bound for BD3-LM — the exact protocol the Rust runtime's `score` implements.

token sequence = [BOS] + tokenizer.encode(text); consecutive windows of model_length tokens (the last
may be shorter; a last window shorter than 2 tokens is dropped). For each MC sample and window: per
block an independent t = 1e-3 + (1 - 1e-3) * u, u ~ U[0,1); each token masked with prob t; likelihood
forward (concat(x_t, x_0)); per-position value = (1/t_block) * CE if masked else 0; the window value is
the SUM over positions 1..len-1. bound per token = total / (n_samples * counted positions), counted
positions = sum over windows of (len - 1). Standard error from the per-sample totals.
"""
import math

import numpy as np
import torch

EPS = 1e-3


def make_windows(tokens, model_length):
    wins = [tokens[i:i + model_length] for i in range(0, len(tokens), model_length)]
    if wins and len(wins[-1]) < 2:
        wins.pop()
    return wins


@torch.no_grad()
def window_values(model, win, gen, n_samples, batch=16):
    """Returns a tensor [n_samples] of the window's summed (1/t)-weighted NLL over positions 1..len-1."""
    L = len(win)
    bs = model.block_size
    x0 = torch.tensor(win, dtype=torch.long)
    nblk = (L + bs - 1) // bs
    mask = model.train_mask(L, bs)
    out = []
    for s0 in range(0, n_samples, batch):
        m = min(batch, n_samples - s0)
        u = torch.rand(m, nblk, generator=gen)
        t_blk = EPS + (1 - EPS) * u
        t_pos = t_blk.repeat_interleave(bs, dim=1)[:, :L]
        masked = torch.rand(m, L, generator=gen) < t_pos
        x0b = x0[None].expand(m, L)
        xt = torch.where(masked, torch.full_like(x0b, model.mask_id), x0b)
        logits = model.forward_likelihood(xt, x0b, mask=mask)
        nll = model.subs_nll(logits, x0b, masked) / t_pos
        out.append(nll[:, 1:].sum(dim=1).double())
    return torch.cat(out)


@torch.no_grad()
def score_tokens(model, tokens, n_samples, seed, batch=16, log_every=0):
    """tokens must already start with BOS. Returns dict(nll_per_token, std_err, n_tokens, ppl_bound, ...)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    wins = make_windows(list(tokens), model.model_length)
    counted = sum(len(w) - 1 for w in wins)
    per_sample = torch.zeros(n_samples, dtype=torch.float64)
    for i, w in enumerate(wins):
        per_sample += window_values(model, w, gen, n_samples, batch)
        if log_every and (i + 1) % log_every == 0:
            print(f"  score: window {i + 1}/{len(wins)} running bound {per_sample.sum().item() / (n_samples * sum(len(x) - 1 for x in wins[:i + 1])):.4f}", flush=True)
    per_tok = (per_sample / counted).numpy()
    mean = float(per_tok.mean())
    se = float(per_tok.std(ddof=1) / math.sqrt(n_samples)) if n_samples > 1 else float("nan")
    return dict(nll_per_token=mean, std_err=se, n_tokens=counted, n_windows=len(wins), n_samples=n_samples,
                seed=seed, ppl_bound=math.exp(mean), per_sample=per_tok.tolist())


def unigram_baseline(train_token_lists, eval_tokens, vocab_size, exclude_ids):
    """Unigram model from training-split token counts, add-one smoothing over the vocabulary minus
    `exclude_ids` (the [MASK] id, never a data token). Evaluated on the same counted positions as
    score_tokens (every token but the leading BOS of each window)."""
    counts = np.zeros(vocab_size, dtype=np.float64)
    for toks in train_token_lists:
        np.add.at(counts, np.asarray(toks), 1)
    support = np.ones(vocab_size, dtype=bool)
    support[list(exclude_ids)] = False
    counts = np.where(support, counts + 1.0, 0.0)
    logp = np.log(np.where(support, counts, 1.0) / counts.sum())
    return logp


def unigram_nll(logp, tokens, model_length):
    wins = make_windows(list(tokens), model_length)
    tot, n = 0.0, 0
    for w in wins:
        tot += -float(logp[np.asarray(w[1:])].sum())
        n += len(w) - 1
    return tot / n, n
