"""Validate bd3lm.py against the authors' reference outputs in /work/shared/golden/bd3lm-tiny-random.

Checks block_causal.{hidden.*,logits} and train.{logits,nll} within 1e-4 (max abs error).
Usage: tools/train/.venv/bin/python tools/train/check_golden.py [golden_dir]
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bd3lm import BD3LM  # noqa: E402

TOL = 1e-4


def load_model(model_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    model = BD3LM(cfg["vocab_size"], cfg["hidden_dim"], cfg["n_heads"], cfg["n_blocks"], cfg["cond_dim"],
                  cfg["model_length"], cfg["block_size"])
    sd = load_file(os.path.join(model_dir, "model.safetensors"))
    sd = {k: v.float() for k, v in sd.items()}
    extra = {k: sd.pop(k) for k in ("sampling_eps_min", "sampling_eps_max") if k in sd}
    missing, unexpected = model.load_state_dict(sd, strict=True)
    assert not missing and not unexpected
    model.eval()
    return model, cfg, extra


def main():
    gdir = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/golden/bd3lm-tiny-random"
    if not os.path.isdir(gdir):
        print(f"SKIP: golden dir {gdir} not found")
        return 0
    torch.set_num_threads(2)
    model, cfg, _ = load_model(gdir)
    g = load_file(os.path.join(gdir, "golden.safetensors"))
    ok = True

    def report(name, got, want):
        nonlocal ok
        err = (got - want).abs().max().item()
        good = err <= TOL
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} {name:28s} max abs err {err:.3e}")
        return err

    with torch.no_grad():
        ids = g["block_causal.input_ids"].long()
        logits, hidden = model.backbone(ids, torch.arange(ids.shape[1]),
                                        model.block_causal_mask(ids.shape[1], cfg["block_size"]), return_hidden=True)
        for i in range(len(hidden)):
            report(f"block_causal.hidden.{i}", hidden[i], g[f"block_causal.hidden.{i}"])
        report("block_causal.logits", logits, g["block_causal.logits"])

        x0, xt, t = g["train.x0"].long(), g["train.xt"].long(), g["train.t"]
        logits = model.forward_likelihood(xt, x0)
        report("train.logits", logits, g["train.logits"])
        masked = xt == model.mask_id
        nll = model.subs_nll(logits, x0, masked) / t[:, None]
        nll = nll[:, 1:].mean(dim=1)
        report("train.nll", nll, g["train.nll"])
    print("golden check:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
