"""A character-level Transformer language model on Hamlet: `python -m genesis.examples.char_lm`.

The text (175k characters, `genesis.data.datasets.hamlet_text`, or any UTF-8
file given with `--text-file`) is split into a training part and the last 10 % for
validation.  Training draws random windows of `--block-size` characters and teaches a
small causal Transformer (token + learned positional embeddings, pre-norm
TransformerEncoderLayers under a causal mask, a final LayerNorm and a linear head) to
predict each next character, with AdamW and a warmup + cosine learning rate.  At the
end the validation loss is reported in bits per character (nats / ln 2, over every
position of non-overlapping validation windows), text is sampled with temperature and
top-k, and a checkpoint (model, configuration, vocabulary) is written whose backbone
(embeddings and encoder) `genesis.examples.finetune` reuses.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

import genesis
from genesis import nn, optim
from genesis.data.datasets import hamlet_text
from genesis.nn import functional as F
from genesis.nn.utils import clip_grad_norm_

DATA = os.environ.get("GENESIS_DATA", os.path.join("~", ".cache", "genesis"))
CHECKPOINT = "char_lm.ckpt"


class CharEncoder(nn.Module):
    """Character ids (N, T) -> hidden states (N, T, d_model): token + learned positional
    embeddings, then pre-norm TransformerEncoderLayers under a causal mask and a final
    LayerNorm.  The part of the language model another task can reuse."""

    def __init__(self, vocab_size, block_size, d_model, nhead, num_layers, dim_feedforward,
                 dropout):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.LearnedPositionalEmbedding(block_size, d_model,
                                                                batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model))
        self.register_buffer("causal_mask",
                             nn.Transformer.generate_square_subsequent_mask(block_size),
                             persistent=False)
        with genesis.no_grad():  # small embeddings, as in GPT: the residual stream starts small
            self.token_embedding.weight.mul_(0.02)
            self.position_embedding.embedding.weight.mul_(0.02)

    def forward(self, ids, key_padding_mask=None):
        t = ids.shape[1]
        x = self.position_embedding(self.token_embedding(ids))
        return self.encoder(x, mask=self.causal_mask[:t, :t],
                            src_key_padding_mask=key_padding_mask, is_causal=True)


class CharTransformer(nn.Module):
    """Causal language model over character ids: (N, T) -> next-character logits
    (N, T, vocab_size), a `CharEncoder` (`backbone`) and a linear `head`."""

    def __init__(self, vocab_size, block_size=128, d_model=128, nhead=4, num_layers=4,
                 dim_feedforward=512, dropout=0.1):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, block_size=block_size, d_model=d_model,
                           nhead=nhead, num_layers=num_layers, dim_feedforward=dim_feedforward,
                           dropout=dropout)
        self.backbone = CharEncoder(vocab_size, block_size, d_model, nhead, num_layers,
                                    dim_feedforward, dropout)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids):
        return self.head(self.backbone(ids))


# ---------------------------------------------------------------------------- data
def load_text(args):
    if args.text_file:
        with open(args.text_file, encoding="utf-8") as f:
            return f.read()
    return hamlet_text(args.data, download=True)


def encode(text, vocab):
    index = {c: i for i, c in enumerate(vocab)}
    unknown = sorted(set(text) - index.keys())
    if unknown:
        raise ValueError(f"characters outside the vocabulary: {''.join(unknown)!r}")
    return genesis.from_numpy(np.array([index[c] for c in text], dtype=np.int64))


def random_windows(data, block_size, batch_size, generator):
    """(inputs, targets), each (batch_size, block_size): random windows of `data` and the
    same windows shifted by one character."""
    starts = genesis.randint(0, data.shape[0] - block_size, (batch_size, 1),
                             generator=generator)
    idx = starts + genesis.arange(block_size + 1)
    chunk = data[idx]
    return chunk[:, :-1], chunk[:, 1:]


def evaluate(model, data, block_size, batch_size=64):
    """Mean next-character loss (nats) over every position of the non-overlapping
    windows of `data`."""
    n = (data.shape[0] - 1) // block_size
    if n == 0:
        raise ValueError(f"the validation text ({data.shape[0]} characters) is shorter than "
                         f"one window of {block_size + 1}")
    starts = genesis.arange(n).unsqueeze(1) * block_size
    idx = starts + genesis.arange(block_size + 1)
    total = 0.0
    model.eval()
    with genesis.no_grad():
        for i in range(0, n, batch_size):
            chunk = data[idx[i:i + batch_size]]
            logits = model(chunk[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                   chunk[:, 1:].reshape(-1), reduction="sum")
            total += loss.item()
    model.train()
    return total / (n * block_size)


# ---------------------------------------------------------------------------- sampling
def generate(model, prompt_ids, length, temperature=1.0, top_k=None, generator=None):
    """`length` characters sampled after `prompt_ids` (a list of ids), each from
    softmax(logits / temperature) restricted to the top_k most likely."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    block = model.config["block_size"]
    ids = list(prompt_ids)
    model.eval()
    with genesis.no_grad():
        for _ in range(length):
            context = genesis.tensor([ids[-block:]], dtype=genesis.int64)
            logits = model(context)[0, -1] / temperature
            if top_k is not None and top_k < logits.shape[0]:
                kth = logits.topk(top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = logits.softmax(-1)
            # inverse-CDF sampling: the first id whose cumulative probability exceeds u
            u = genesis.rand(1, dtype=probs.dtype, generator=generator)
            ids.append(min(int((probs.cumsum(0) <= u).sum().item()), probs.shape[0] - 1))
    model.train()
    return ids[len(prompt_ids):]


# ---------------------------------------------------------------------------- training
def progress(iterable, **kw):
    try:
        from tqdm import tqdm
    except ImportError:
        sys.exit("the genesis examples show their progress with tqdm: pip install tqdm "
                 "(or pip install 'genesis-autograd[examples]')")
    return tqdm(iterable, **kw)


def warmup_cosine(steps, warmup):
    """Learning-rate factor: linear warmup, then cosine decay to 10 %."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(steps - warmup, 1)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(t, 1.0)))
    return factor


def train(model, train_data, args, generator):
    """`args.steps` AdamW steps on random windows; returns the losses."""
    opt = optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99),
                      weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.LambdaLR(opt, warmup_cosine(args.steps, min(100, args.steps)))
    losses = []
    bar = progress(range(args.steps), desc="training", unit="step", disable=args.quiet,
                    dynamic_ncols=True)
    for step in bar:
        inputs, targets = random_windows(train_data, args.block_size, args.batch_size,
                                         generator)
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == args.steps - 1:
            recent = losses[-50:]
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
    bar.close()
    return losses


def parse_args(argv):
    p = argparse.ArgumentParser(prog="genesis-char-lm", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=700)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--ff", type=int, default=512, help="feed-forward width")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--prompt", default="HAMLET.\n")
    p.add_argument("--length", type=int, default=500, help="characters to generate")
    p.add_argument("--text-file", default=None, help="train on this UTF-8 file instead")
    p.add_argument("--data", default=DATA, help="directory holding (or caching) the text")
    p.add_argument("--out", default="runs", help="directory for the checkpoint")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    """Entry point of `python -m genesis.examples.char_lm`; returns a dict of results
    (val_bpc, seconds, sample, checkpoint path)."""
    args = parse_args(argv)
    if args.threads:
        genesis.set_num_threads(args.threads)
    text = load_text(args)
    vocab = "".join(sorted(set(text)))
    data = encode(text, vocab)
    split = int(0.9 * data.shape[0])
    train_data, val_data = data[:split], data[split:]
    if train_data.shape[0] <= args.block_size or val_data.shape[0] <= args.block_size:
        sys.exit(f"the text ({len(text)} characters) is too short for windows of "
                 f"{args.block_size} characters")
    unknown = sorted(set(args.prompt) - set(vocab))
    if unknown:
        sys.exit(f"--prompt has characters outside the text's vocabulary: {''.join(unknown)!r}")

    genesis.manual_seed(args.seed)
    generator = genesis.Generator().manual_seed(args.seed)
    model = CharTransformer(len(vocab), args.block_size, args.d_model, args.heads, args.layers,
                            args.ff, args.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"genesis {genesis.__version__}: {len(text)} characters ({split} train, "
          f"{data.shape[0] - split} validation), vocabulary {len(vocab)}, {n_params} "
          f"parameters, {genesis.get_num_threads()} threads")
    t0 = time.perf_counter()
    losses = train(model, train_data, args, generator)
    seconds = time.perf_counter() - t0
    val_nats = evaluate(model, val_data, args.block_size)
    val_bpc = val_nats / math.log(2)
    print(f"trained {args.steps} steps in {seconds:.1f} s ({seconds / max(args.steps, 1):.3f} "
          f"s/step); final training loss {losses[-1]:.3f} nats")
    print(f"validation: {val_nats:.4f} nats/char = {val_bpc:.4f} bits/char")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, CHECKPOINT)
    genesis.save({"model": model.state_dict(), "config": model.config, "vocab": vocab,
                  "steps": args.steps, "val_bpc": val_bpc}, path)
    print(f"checkpoint: {path}")

    index = {c: i for i, c in enumerate(vocab)}
    sample_ids = generate(model, [index[c] for c in args.prompt], args.length,
                          args.temperature, args.top_k, generator)
    sample = args.prompt + "".join(vocab[i] for i in sample_ids)
    print(f"--- sample (temperature {args.temperature}, top-k {args.top_k}) ---")
    print(sample)
    return {"val_bpc": val_bpc, "seconds": seconds, "sample": sample, "checkpoint": path,
            "losses": losses}


def load_checkpoint(path):
    """(CharTransformer with the saved weights, vocabulary string, checkpoint dict)."""
    ckpt = genesis.load(path)
    model = CharTransformer(**ckpt["config"])
    model.load_state_dict(ckpt["model"])
    return model, ckpt["vocab"], ckpt


if __name__ == "__main__":
    main()
