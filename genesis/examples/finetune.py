"""Pre-train, then fine-tune: Rotten Tomatoes sentiment with the character LM's encoder.

`python -m genesis.examples.finetune` loads the checkpoint of
`genesis.examples.char_lm` (or, when there is none, pre-trains one briefly), reuses
its backbone (character embeddings, positional embeddings and Transformer encoder),
freezes the embeddings and the lowest `--freeze-layers` encoder layers with
`requires_grad_(False)`, and adds a classification head over the mean of the
encoder's outputs.  Snippets are encoded with the LM's vocabulary (characters it has
never seen become spaces), truncated to `--max-len` characters and padded; the
padding is excluded by a key padding mask and from the mean.  After fine-tuning with
AdamW it prints the test accuracy against the majority-class rate, and checks (with
asserts) that the frozen parameters are bit-identical to a copy saved before training
and that the loss on a fixed batch went down.
"""
import argparse
import os
import sys
import time

import numpy as np

import genesis
from genesis import nn, optim
from genesis.data import DataLoader, TensorDataset
from genesis.data.datasets import RottenTomatoes
from genesis.examples import char_lm
from genesis.nn import functional as F


class SentimentClassifier(nn.Module):
    """A pre-trained `CharEncoder` and a head: ids (N, T) and padding mask (N, T, True at
    padding) -> class logits (N, num_classes), from the mean of the encoder's outputs
    over the non-padding positions."""

    def __init__(self, backbone, d_model, num_classes=2, dropout=0.1):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_model, num_classes))

    def forward(self, ids, padding_mask):
        h = self.backbone(ids, key_padding_mask=padding_mask)
        keep = (~padding_mask).to(h.dtype).unsqueeze(-1)
        pooled = (h * keep).sum(1) / keep.sum(1)
        return self.head(pooled)


def freeze(backbone, num_layers):
    """Stop training the embeddings and the lowest `num_layers` encoder layers."""
    layers = backbone.encoder.layers
    if not 0 <= num_layers <= len(layers):
        raise ValueError(f"--freeze-layers must be in [0, {len(layers)}], got {num_layers}")
    for module in [backbone.token_embedding, backbone.position_embedding,
                   *layers[:num_layers]]:
        module.requires_grad_(False)


# ---------------------------------------------------------------------------- data
def load_reviews(args, split):
    """(texts, labels) of the `split` ("train" or "test") snippets."""
    if args.reviews_file:
        # one "label<TAB>text" line per snippet; every fifth line is the test split
        with open(args.reviews_file, encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t", 1) for line in f if line.strip()]
        rows = [r for i, r in enumerate(rows) if (i % 5 == 4) == (split == "test")]
        return [t for _, t in rows], [int(label) for label, _ in rows]
    ds = RottenTomatoes(args.data, split=split, download=True)
    return list(ds.texts), list(ds.labels)


def encode_batch(texts, vocab, max_len):
    """(ids (n, max_len) int64, padding mask (n, max_len) bool) of texts truncated to
    max_len characters; unknown characters become spaces (or id 0 without a space)."""
    index = {c: i for i, c in enumerate(vocab)}
    fallback = index.get(" ", 0)
    ids = np.full((len(texts), max_len), fallback, np.int64)
    pad = np.ones((len(texts), max_len), bool)
    for row, text in enumerate(texts):
        codes = [index.get(c, fallback) for c in text[:max_len]] or [fallback]
        ids[row, :len(codes)] = codes
        pad[row, :len(codes)] = False
    return genesis.from_numpy(ids), genesis.from_numpy(pad)


def trim(ids, pad):
    """The batch cut after its longest snippet (less work for short batches)."""
    longest = int((~pad).sum(1).max().item())
    return ids[:, :longest], pad[:, :longest]


def accuracy(model, ids, pad, labels, batch_size=128):
    model.eval()
    correct = 0
    with genesis.no_grad():
        for i in range(0, ids.shape[0], batch_size):
            b_ids, b_pad = trim(ids[i:i + batch_size], pad[i:i + batch_size])
            pred = model(b_ids, b_pad).argmax(1)
            correct += int((pred == labels[i:i + batch_size]).sum().item())
    model.train()
    return 100.0 * correct / ids.shape[0]


def batch_loss(model, ids, pad, labels):
    model.eval()
    with genesis.no_grad():
        loss = F.cross_entropy(model(*trim(ids, pad)), labels).item()
    model.train()
    return loss


# ---------------------------------------------------------------------------- main
def parse_args(argv):
    p = argparse.ArgumentParser(prog="genesis-finetune", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=None,
                   help=f"char LM checkpoint (default: OUT/{char_lm.CHECKPOINT})")
    p.add_argument("--pretrain-steps", type=int, default=300,
                   help="steps of char_lm pre-training when the checkpoint is missing")
    p.add_argument("--freeze-layers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-len", type=int, default=128, help="characters per snippet")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--train-subset", type=int, default=None, metavar="N")
    p.add_argument("--test-subset", type=int, default=None, metavar="N")
    p.add_argument("--reviews-file", default=None,
                   help="'label<TAB>text' lines to use instead of Rotten Tomatoes")
    p.add_argument("--data", default=char_lm.DATA, help="directory holding (or caching) data")
    p.add_argument("--out", default="runs")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    """Entry point of `python -m genesis.examples.finetune`; returns a dict of results
    (test_accuracy, chance, probe losses, frozen/trainable parameter counts)."""
    args = parse_args(argv)
    if args.threads:
        genesis.set_num_threads(args.threads)
    path = args.checkpoint or os.path.join(args.out, char_lm.CHECKPOINT)
    if not os.path.exists(path):
        if args.checkpoint:
            sys.exit(f"no checkpoint {path}")
        print(f"no checkpoint {path}: pre-training a character LM for "
              f"{args.pretrain_steps} steps")
        char_lm.main(["--steps", str(args.pretrain_steps), "--out", args.out, "--data",
                      args.data, "--length", "0", "--seed", str(args.seed)]
                     + (["--quiet"] if args.quiet else []))
    lm, vocab, ckpt = char_lm.load_checkpoint(path)
    config = ckpt["config"]
    max_len = min(args.max_len, config["block_size"])

    splits = {}
    for split, subset in (("train", args.train_subset), ("test", args.test_subset)):
        texts, labels = load_reviews(args, split)
        if subset:
            texts, labels = texts[:subset], labels[:subset]
        ids, pad = encode_batch(texts, vocab, max_len)
        splits[split] = (ids, pad, genesis.tensor(labels, dtype=genesis.int64))
    train_ids, train_pad, train_labels = splits["train"]
    test_ids, test_pad, test_labels = splits["test"]
    positive = float(test_labels.to(genesis.float64).mean().item())
    chance = 100.0 * max(positive, 1 - positive)

    genesis.manual_seed(args.seed)
    model = SentimentClassifier(lm.backbone, config["d_model"])
    freeze(model.backbone, args.freeze_layers)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    print(f"genesis {genesis.__version__}: backbone of {path} ({config['num_layers']} layers, "
          f"lower {args.freeze_layers} and the embeddings frozen): "
          f"{sum(p.numel() for p in frozen.values())} frozen, "
          f"{sum(p.numel() for p in trainable)} trainable parameters; "
          f"{train_ids.shape[0]} train / {test_ids.shape[0]} test snippets of at most "
          f"{max_len} characters, {genesis.get_num_threads()} threads")

    probe = tuple(t[:256] for t in splits["test"])
    probe_before = batch_loss(model, *probe)
    opt = optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
    shuffle = genesis.Generator().manual_seed(args.seed)
    loader = DataLoader(TensorDataset(train_ids, train_pad, train_labels),
                        batch_size=args.batch_size, shuffle=True, generator=shuffle)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        bar = char_lm.progress(loader, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch",
                                disable=args.quiet, dynamic_ncols=True)
        total = seen = 0
        for ids, pad, labels in bar:
            loss = F.cross_entropy(model(*trim(ids, pad)), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * labels.shape[0]
            seen += labels.shape[0]
            bar.set_postfix(loss=f"{total / seen:.4f}")
        bar.close()
        print(f"epoch {epoch + 1}: training loss {total / seen:.4f}")
    seconds = time.perf_counter() - t0
    probe_after = batch_loss(model, *probe)
    test_acc = accuracy(model, test_ids, test_pad, test_labels)

    unchanged = all(np.array_equal(p.detach().numpy(), frozen[n].numpy())
                    for n, p in model.named_parameters() if n in frozen)
    moved = sum(not np.array_equal(p.detach().numpy(), before[n].numpy())
                for n, p in model.named_parameters() if n in before)
    print(f"fine-tuned {args.epochs} epochs in {seconds:.1f} s")
    print(f"frozen parameters unchanged: {unchanged} ({len(frozen)} tensors); trainable "
          f"tensors changed: {moved} of {len(before)}")
    print(f"loss on {probe[0].shape[0]} test snippets: {probe_before:.4f} before, "
          f"{probe_after:.4f} after fine-tuning")
    print(f"test accuracy: {test_acc:.2f} % (majority class: {chance:.2f} %)")
    assert unchanged, "a frozen parameter changed during fine-tuning"
    assert moved == len(before), "a trainable parameter did not change"
    assert probe_after < probe_before, "fine-tuning did not lower the loss"
    return {"test_accuracy": test_acc, "chance": chance, "probe_loss_before": probe_before,
            "probe_loss_after": probe_after, "frozen_tensors": len(frozen),
            "trainable_tensors": len(before), "seconds": seconds}


if __name__ == "__main__":
    main()
