"""Smoke tests of genesis.examples.char_lm and genesis.examples.finetune: a few steps of
tiny models, on the real Hamlet text and Rotten Tomatoes snippets when they are cached,
else on text and snippets made here."""
import math
import os

import numpy as np
import pytest

import genesis as G
from genesis.data.datasets import DownloadError, RottenTomatoes, hamlet_text
from genesis.examples import char_lm, finetune
from real_data import data_root

pytest.importorskip("tqdm")

TINY = ["--batch-size", "4", "--block-size", "16", "--d-model", "16", "--heads", "2",
        "--layers", "2", "--ff", "32", "--quiet", "--threads", "1"]


def _real(load, what):
    """True when the real data set loads (from the cache, or downloaded once); False
    when it cannot be obtained, unless GENESIS_REQUIRE_DATA=1."""
    try:
        load(data_root())
        return True
    except DownloadError as e:
        if os.environ.get("GENESIS_REQUIRE_DATA") == "1":
            pytest.fail(f"GENESIS_REQUIRE_DATA=1 but {what} could not be loaded: {e}")
        return False


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("char_lm")
    source = ["--data", data_root()] if _real(hamlet_text, "Hamlet") else \
        ["--text-file", str(_synthetic_text(out))]
    result = char_lm.main(TINY + source + ["--steps", "3", "--length", "12", "--prompt", "T",
                                           "--out", str(out)])
    return result, out


def _synthetic_text(folder):
    rng = np.random.default_rng(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "HAMLET."]
    path = folder / "text.txt"
    path.write_text(" ".join(rng.choice(words, 800)) + "\n", encoding="utf-8")
    return path


def test_char_lm_trains_reports_and_samples(lm_run):
    result, out = lm_run
    assert len(result["losses"]) == 3 and all(math.isfinite(v) for v in result["losses"])
    assert math.isfinite(result["val_bpc"]) and result["val_bpc"] > 0
    assert result["sample"].startswith("T") and len(result["sample"]) == 13
    assert os.path.isfile(result["checkpoint"])


def test_checkpoint_restores_the_model(lm_run):
    result, _ = lm_run
    model, vocab, ckpt = char_lm.load_checkpoint(result["checkpoint"])
    assert ckpt["config"]["d_model"] == 16 and ckpt["steps"] == 3
    assert ckpt["val_bpc"] == pytest.approx(result["val_bpc"])
    ids = G.tensor([[0, 1, 2, 1]], dtype=G.int64)
    model.eval()
    with G.no_grad():
        logits = model(ids)
    assert tuple(logits.shape) == (1, 4, len(vocab))
    # causal: the logits of a position do not depend on later characters
    with G.no_grad():
        shorter = model(ids[:, :2])
    np.testing.assert_allclose(logits.numpy()[:, :2], shorter.numpy(), rtol=1e-5, atol=1e-6)


def test_top_k_one_sampling_is_greedy(lm_run):
    result, _ = lm_run
    model, vocab, _ = char_lm.load_checkpoint(result["checkpoint"])
    ids = char_lm.generate(model, [0, 1], 5, temperature=0.5, top_k=1)
    context = [0, 1]
    model.eval()
    with G.no_grad():
        for _ in range(5):
            context.append(int(model(G.tensor([context], dtype=G.int64))[0, -1].argmax().item()))
    assert ids == context[2:]
    with pytest.raises(ValueError, match="temperature"):
        char_lm.generate(model, [0], 1, temperature=0.0)


def test_finetune_freezes_lower_layers_and_learns(lm_run, tmp_path):
    result, _ = lm_run
    if _real(lambda root: RottenTomatoes(root, split="test"), "Rotten Tomatoes"):
        source = ["--data", data_root(), "--train-subset", "1024", "--test-subset", "128"]
    else:
        rng = np.random.default_rng(1)
        lines = []
        for i in range(160):
            label = i % 2
            word = "to be" if label else "not"
            lines.append(f"{label}\t{' '.join([word] * int(rng.integers(2, 6)))}")
        path = tmp_path / "reviews.tsv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        source = ["--reviews-file", str(path)]
    out = finetune.main(["--checkpoint", result["checkpoint"], "--freeze-layers", "1",
                         "--epochs", "2", "--batch-size", "16", "--lr", "3e-3", "--quiet",
                         "--threads", "1", "--out", str(tmp_path)] + source)
    # embeddings (token + position) and one encoder layer (12 tensors) are frozen
    assert out["frozen_tensors"] == 2 + 12
    assert out["probe_loss_after"] < out["probe_loss_before"]
    assert 0 <= out["test_accuracy"] <= 100


def test_freeze_rejects_bad_counts(lm_run):
    model, _, _ = char_lm.load_checkpoint(lm_run[0]["checkpoint"])
    with pytest.raises(ValueError, match="freeze-layers"):
        finetune.freeze(model.backbone, 3)
