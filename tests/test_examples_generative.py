"""Smoke tests of the generative and pruning MNIST examples (particle CNN, GAN, VAE):
each runs one epoch on a small subset of the real data (the `mnist_root` fixture) and
writes its pictures and numbers.  The PNG writer they share is checked by decoding
its files."""
import math
import os
import struct
import zlib

import numpy as np
import pytest

import genesis as G
from genesis.examples import _common, gan, particle_mnist, vae


def _args(root, out, *extra):
    return ["--data", root, "--out", str(out), "--train-subset", "256", "--test-subset", "128",
            "--epochs", "1", "--quiet", "--threads", "1", *extra]


def read_png(path):
    """Decode an 8-bit grayscale, unfiltered PNG as save_image writes it."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        length, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == \
            zlib.crc32(tag + body) & 0xFFFFFFFF
        chunks[tag] = chunks.get(tag, b"") + body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 0) and b"IEND" in chunks
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, width + 1)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:]


def _has_matplotlib():
    return _common.pyplot() is not None


# ---------------------------------------------------------------- shared helpers
def test_save_image_grid(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-0.2, 1.2, (5, 1, 3, 4))
    path = tmp_path / "grid.png"
    _common.save_image(G.tensor(images), path, nrow=2, padding=1)
    grid = read_png(path)
    assert grid.shape == (3 * (3 + 1) + 1, 2 * (4 + 1) + 1)
    expected = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)
    covered = np.zeros(grid.shape, bool)
    for i in range(5):
        top, left = 1 + (i // 2) * 4, 1 + (i % 2) * 5
        np.testing.assert_array_equal(grid[top:top + 3, left:left + 4], expected[i, 0])
        covered[top:top + 3, left:left + 4] = True
    assert not grid[~covered].any()  # padding and the missing sixth tile are black
    if _has_matplotlib():
        import matplotlib.image
        np.testing.assert_array_equal(
            np.round(matplotlib.image.imread(path) * 255).astype(np.uint8), read_png(path))


# ---------------------------------------------------------------- examples
def test_particle_mnist(mnist_root, tmp_path, capsys):
    r = particle_mnist.main(_args(mnist_root, tmp_path, "--particles", "4", "--hidden", "16",
                                  "--tau", "0.3"))
    out = capsys.readouterr().out
    for line in ("particle 3: mean gate", "test accuracy before pruning",
                 "test accuracy after pruning", "after pruning and 1 fine-tune epoch"):
        assert line in out
    for key in ("before", "pruned", "finetuned"):
        assert 0 <= r[key] <= 100
    info = r["pruning"]
    assert 1 <= len(info.kept) <= 4 and len(info.kept) + len(info.removed) == 4
    assert r["parameters_before"] - r["parameters_after"] == info.parameters_removed
    assert info.parameters_removed == len(info.removed) * (16 * 512 + 16 + 512)
    assert str(info) in out


def test_gan(mnist_root, tmp_path, capsys):
    r = gan.main(_args(mnist_root, tmp_path, "--samples", "100", "--classifier-epochs", "1"))
    out = capsys.readouterr().out
    assert read_png(tmp_path / "gan-epoch-1.png").shape == (8 * 30 + 2, 8 * 30 + 2)
    assert os.path.exists(tmp_path / "gan.ckpt")
    assert "judge: mlp classifier trained for 1 epoch(s)" in out
    assert "mean max-softmax confidence" in out
    assert 0.1 <= r["confidence"] <= 1 and 0.1 <= r["real_confidence"] <= 1
    assert sum(r["class_counts"]) == 100 and len(r["class_counts"]) == 10
    assert 0 <= r["class_entropy_bits"] <= math.log2(10) + 1e-9
    assert all(math.isfinite(r[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    assert os.path.exists(tmp_path / "gan-quality.png") == _has_matplotlib()
    # a second run judges with the classifier the first one kept
    gan.main(_args(mnist_root, tmp_path, "--samples", "50", "--epochs", "0"))
    assert f"judge: mlp classifier from {tmp_path / 'gan-classifier.ckpt'}" in \
        capsys.readouterr().out


def test_gan_class_spread():
    counts, bits = gan.class_spread(G.tensor([3, 3, 1, 7]))
    assert counts == [0, 1, 0, 2, 0, 0, 0, 1, 0, 0] and bits == pytest.approx(1.5)
    assert gan.class_spread(G.tensor([4] * 5)) == ([0] * 4 + [5] + [0] * 5, 0.0)


def test_vae(mnist_root, tmp_path, capsys):
    r = vae.main(_args(mnist_root, tmp_path, "--latent", "4"))
    out = capsys.readouterr().out
    assert "train ELBO" in out and "test ELBO" in out
    for split in ("train", "test"):
        terms = r[split]
        assert terms["elbo"] < 0 and terms["kl"] >= 0
        assert terms["elbo"] == pytest.approx(-(terms["bce"] + terms["kl"]))
    # 32 test digits: four rows of originals, each followed by its reconstructions
    assert read_png(tmp_path / "vae-recon-1.png").shape == (8 * 30 + 2, 8 * 30 + 2)
    assert read_png(tmp_path / "vae-samples-1.png").shape == (8 * 30 + 2, 8 * 30 + 2)


def test_vae_elbo_terms_match_their_formulas():
    rng = np.random.default_rng(1)
    logits, x = rng.standard_normal((3, 784)), rng.uniform(0, 1, (3, 1, 28, 28))
    mu, logvar = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    bce, kl = vae.elbo_terms(*(G.tensor(a) for a in (logits, x, mu, logvar)))
    p = 1 / (1 + np.exp(-logits))
    xf = x.reshape(3, 784)
    np.testing.assert_allclose(bce.item(), -(xf * np.log(p) + (1 - xf) * np.log(1 - p)).sum(),
                               rtol=1e-10)
    np.testing.assert_allclose(kl.item(), 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar).sum(),
                               rtol=1e-12)
