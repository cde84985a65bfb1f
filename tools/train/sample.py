"""A simple block-diffusion sampler (first-hitting style), no KV cache.

For each block of block_size tokens: start with all [MASK]; repeatedly pick one random masked position
of the block and sample it from softmax(logits) with [MASK] excluded, the logits coming from a
block-causal forward over prefix + current block. Commits exactly one token per step.
"""
import torch


@torch.no_grad()
def generate(model, prompt_ids, n_blocks, seed=0, temperature=1.0, top_p=1.0):
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    bs = model.block_size
    ids = list(prompt_ids)
    # The prompt may end inside a block: that block's remaining positions start masked.
    total = min(((len(ids) + bs - 1) // bs + n_blocks) * bs, model.model_length)
    ids = ids + [model.mask_id] * (total - len(ids))
    for b0 in range(0, total, bs):
        while model.mask_id in ids[b0:b0 + bs]:
            x = torch.tensor([ids[:b0 + bs]])
            logits = model.forward_block_causal(x)[0].float()
            masked = [i for i in range(b0, b0 + bs) if ids[i] == model.mask_id]
            pos = masked[int(torch.randint(len(masked), (1,), generator=gen))]
            lg = logits[pos] / temperature
            lg[model.mask_id] = float("-inf")
            p = torch.softmax(lg, dim=-1)
            if top_p < 1.0:
                sp, si = p.sort(descending=True)
                keep = sp.cumsum(0) - sp < top_p
                p = torch.zeros_like(p).scatter(0, si[keep], sp[keep])
                p = p / p.sum()
            ids[pos] = int(torch.multinomial(p, 1, generator=gen))
    return ids
