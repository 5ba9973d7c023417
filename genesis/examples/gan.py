"""A generative adversarial network on MNIST: `python -m genesis.examples.gan`.

Generator: latent z (--latent) -> 256 -> 512 (batch norm) -> 784, LeakyReLU(0.2) and a
tanh output; discriminator: 784 -> 512 -> 256 -> 1 logit, LeakyReLU(0.2).  Both train
with Adam (lr 2e-4, betas (0.5, 0.999)) on binary cross-entropy with logits; the
generator uses the non-saturating loss -log D(G(z)).  After every epoch a grid of 64
digits drawn from one fixed batch of latent codes is written to
`--out/gan-epoch-<n>.png`, and the models to `--out/gan.ckpt`.

Quality.  At the end an MNIST classifier judges --samples generated digits: the mean
of its max-softmax confidence (real test digits as the reference) and the spread of
the predicted classes (histogram and entropy; a generator that covers every class
evenly reaches log2(10) = 3.32 bits).  The classifier is loaded from --classifier, or
from the checkpoint `genesis.examples.mnist` writes in --out (`mnist-cnn.ckpt` or
`mnist-mlp.ckpt`); otherwise an MLP is trained for --classifier-epochs and kept in
`--out/gan-classifier.ckpt` for the next run.  With matplotlib the numbers are also
drawn in `--out/gan-quality.png`.
"""
import argparse
import math
import os
import sys
import time

import genesis
from genesis import nn, optim
from genesis.data import DataLoader
from genesis.examples import mnist
from genesis.examples._common import (add_common_arguments, epoch_loader, mnist_splits,
                                      normalize, progress, pyplot, save_image)

PROG = "genesis.examples.gan"
F = nn.functional


def build_generator(latent):
    """z (N, latent) -> images (N, 1, 28, 28) in [-1, 1]."""
    return nn.Sequential(
        nn.Linear(latent, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),
        nn.Linear(512, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))


def build_discriminator():
    """images (N, 1, 28, 28) in [-1, 1] -> logits (N, 1) of being real."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))


def train_epoch(gen, disc, opt_g, opt_d, loader, args, desc):
    """One pass over the real digits, a discriminator step and a generator step per
    batch; returns the mean D loss, G loss, D(x) and D(G(z))."""
    sums = {"d_loss": 0.0, "g_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
    seen = 0
    bar = progress(loader, PROG, desc=desc, unit="batch", disable=args.quiet,
                   dynamic_ncols=True)
    for step, (images, _) in enumerate(bar):
        n = images.shape[0]
        real = images.to(args.device) * 2 - 1
        ones = genesis.ones(n, 1, device=args.device)
        zeros = genesis.zeros(n, 1, device=args.device)
        fake = gen(genesis.randn(n, args.latent, device=args.device))

        real_logits, fake_logits = disc(real), disc(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, ones) +
                  F.binary_cross_entropy_with_logits(fake_logits, zeros))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()

        g_loss = F.binary_cross_entropy_with_logits(disc(fake), ones)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()

        with genesis.no_grad():
            batch = {"d_loss": d_loss.item(), "g_loss": g_loss.item(),
                     "d_real": real_logits.sigmoid().mean().item(),
                     "d_fake": fake_logits.sigmoid().mean().item()}
        for key, value in batch.items():
            sums[key] += value * n
        seen += n
        if step % 20 == 0:
            bar.set_postfix({k: f"{v / seen:.3f}" for k, v in sums.items()})
    bar.close()
    return {k: v / seen for k, v in sums.items()}


def load_or_train_classifier(args, train_set):
    """An MNIST classifier (see the module docstring for where it comes from) and a
    line saying which one it is."""
    candidates = [args.classifier] if args.classifier else [
        os.path.join(args.out, name) for name in
        ("mnist-cnn.ckpt", "mnist-mlp.ckpt", "gan-classifier.ckpt")]
    for path in candidates:
        if os.path.exists(path):
            ckpt = genesis.load(path)
            model = mnist.build_model(ckpt["model_name"]).to(args.device)
            model.load_state_dict(ckpt["model"])
            return model, f"{ckpt['model_name']} classifier from {path}"
    if args.classifier:
        sys.exit(f"{PROG}: no classifier checkpoint {args.classifier}")
    model = mnist.build_model("mlp").to(args.device)
    lr = mnist.DEFAULTS["mlp"]["lr"]
    opt, sched = mnist.build_optimizer("mlp", model, lr, args.classifier_epochs)
    for epoch in range(args.classifier_epochs):
        loader = epoch_loader(train_set, 128, args.seed, epoch)
        mnist.train_epoch(model, loader, opt, args.device,
                          f"classifier {epoch + 1}/{args.classifier_epochs}", args.quiet,
                          prog=PROG)
        sched.step()
    path = os.path.join(args.out, "gan-classifier.ckpt")
    genesis.save({"model_name": "mlp", "model": model.state_dict()}, path)
    return model, f"mlp classifier trained for {args.classifier_epochs} epoch(s), saved to {path}"


def judge(classifier, images):
    """Max-softmax confidences (N,) and predicted classes (N,) for images in [0, 1]."""
    classifier.eval()
    with genesis.no_grad():
        probs = classifier(normalize(images)).softmax(1)
        confidence, predicted = probs.max(1)
    return confidence, predicted


def class_spread(predicted):
    """Counts of each predicted class (list of 10 ints) and their entropy in bits."""
    with genesis.no_grad():
        counts = F.one_hot(predicted, 10).sum(0)
        p = counts.to(genesis.float64) / predicted.shape[0]
        entropy = -(p * p.clamp(min=1e-300).log()).sum() * (1 / math.log(2))
    return counts.tolist(), float(entropy.item()) + 0.0  # + 0.0: no "-0.00" bits


def quality(gen, classifier, test_set, args):
    """Classifier confidence on --samples generated digits against as many real test
    digits, and the class spread of the generated ones."""
    gen.eval()
    with genesis.no_grad():
        fake = (gen(genesis.randn(args.samples, args.latent, device=args.device)) + 1) * 0.5
    real, _ = next(iter(DataLoader(test_set, batch_size=args.samples)))
    fake_conf, fake_pred = judge(classifier, fake)
    real_conf, _ = judge(classifier, real.to(args.device))
    counts, entropy = class_spread(fake_pred)
    return {"confidence": float(fake_conf.mean().item()),
            "real_confidence": float(real_conf.mean().item()),
            "class_counts": counts, "class_entropy_bits": entropy,
            "fake_conf_values": fake_conf.tolist(), "real_conf_values": real_conf.tolist()}


def plot_quality(q, path):
    """Predicted-class histogram and confidence distributions as a PNG; False without
    matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.bar(range(10), q["class_counts"])
    ax1.set(xlabel="predicted class", ylabel="generated digits", xticks=range(10),
            title=f"class spread: entropy {q['class_entropy_bits']:.2f} of 3.32 bits")
    bins = [i / 20 for i in range(21)]
    ax2.hist(q["real_conf_values"], bins=bins, alpha=0.6, label="real test digits")
    ax2.hist(q["fake_conf_values"], bins=bins, alpha=0.6, label="generated digits")
    ax2.set(xlabel="max softmax confidence", ylabel="digits", yscale="log",
            title=f"mean confidence: generated {q['confidence']:.3f}, "
                  f"real {q['real_confidence']:.3f}")
    ax2.legend()
    fig.suptitle("genesis GAN on MNIST, judged by a classifier")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--latent", type=int, default=64, help="size of the latent code z")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--samples", type=int, default=1000,
                   help="generated digits the classifier judges")
    p.add_argument("--classifier", default=None, metavar="CHECKPOINT",
                   help="checkpoint of genesis.examples.mnist to judge the digits with")
    p.add_argument("--classifier-epochs", type=int, default=2,
                   help="epochs of the MLP classifier trained when there is no checkpoint")
    add_common_arguments(p)
    return p.parse_args(argv)


def main(argv=None):
    """Entry point; returns the quality figures (see `quality`) plus the last epoch's
    losses."""
    args = parse_args(argv)
    if args.threads:
        genesis.set_num_threads(args.threads)
    train_set, test_set = mnist_splits(args)
    os.makedirs(args.out, exist_ok=True)
    genesis.manual_seed(args.seed)
    gen = build_generator(args.latent).to(args.device)
    disc = build_discriminator().to(args.device)
    opt_g = optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    fixed_z = genesis.randn(64, args.latent, generator=genesis.Generator().manual_seed(
        args.seed), device=args.device)
    print(f"genesis {genesis.__version__}: GAN on MNIST ({len(train_set)} images), "
          f"{genesis.get_num_threads()} threads")
    losses = {}
    for epoch in range(args.epochs):
        loader = epoch_loader(train_set, args.batch_size, args.seed, epoch)
        t0 = time.perf_counter()
        losses = train_epoch(gen, disc, opt_g, opt_d, loader, args,
                             f"epoch {epoch + 1}/{args.epochs}")
        seconds = time.perf_counter() - t0
        gen.eval()
        with genesis.no_grad():
            samples = (gen(fixed_z) + 1) * 0.5
        gen.train()
        png = os.path.join(args.out, f"gan-epoch-{epoch + 1}.png")
        save_image(samples, png)
        genesis.save({"generator": gen.state_dict(), "discriminator": disc.state_dict(),
                      "latent": args.latent, "epoch": epoch + 1},
                     os.path.join(args.out, "gan.ckpt"))
        print(f"epoch {epoch + 1}: D loss {losses['d_loss']:.3f}, G loss "
              f"{losses['g_loss']:.3f}, D(x) {losses['d_real']:.3f}, D(G(z)) "
              f"{losses['d_fake']:.3f}, {seconds:.1f} s; samples: {png}")

    classifier, which = load_or_train_classifier(args, train_set)
    print(f"judge: {which}")
    q = quality(gen, classifier, test_set, args)
    print(f"quality over {args.samples} generated digits: mean max-softmax confidence "
          f"{q['confidence']:.3f} (real test digits: {q['real_confidence']:.3f}); "
          f"predicted classes {q['class_counts']}, entropy {q['class_entropy_bits']:.2f} "
          f"of {math.log2(10):.2f} bits")
    png = os.path.join(args.out, "gan-quality.png")
    if plot_quality(q, png):
        print(f"quality figure: {png}")
    else:
        print("matplotlib is not installed: no quality figure (pip install matplotlib)")
    return {**losses, **{k: v for k, v in q.items() if not k.endswith("_values")}}


if __name__ == "__main__":
    main()
