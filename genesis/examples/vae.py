"""A variational autoencoder on MNIST: `python -m genesis.examples.vae`.

Encoder 784 -> 400 -> (mu, logvar) of a diagonal Gaussian q(z|x) over --latent dims;
z = mu + exp(logvar / 2) * eps with eps ~ N(0, I) (the reparameterization trick, so
gradients reach the encoder through the sample); decoder --latent -> 400 -> 784
Bernoulli logits p(x|z).  Training maximizes the evidence lower bound

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I))
            = -BCE(decoder(z), x) - KL,  KL = -1/2 sum(1 + logvar - mu^2 - exp(logvar)),

with Adam; the train and test ELBO (nats per image, with its two terms) are printed
every epoch.  Each epoch writes `--out/vae-recon-<n>.png` (test digits in the odd
rows, their reconstructions below them) and `--out/vae-samples-<n>.png` (digits
decoded from one fixed batch of z ~ N(0, I)).
"""
import argparse
import os
import time

import genesis
from genesis import nn, optim
from genesis.data import DataLoader
from genesis.examples._common import (add_common_arguments, epoch_loader, mnist_splits,
                                      progress, save_image)

PROG = "genesis.examples.vae"
F = nn.functional


class VAE(nn.Module):
    """784 -> hidden -> (mu, logvar) of `latent` dims -> hidden -> 784 logits."""

    def __init__(self, latent=20, hidden=400):
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 784))

    def encode(self, x):
        """mu and logvar of q(z|x)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def reparameterize(self, mu, logvar):
        """A sample of q(z|x) written as a differentiable function of mu and logvar."""
        return mu + (logvar * 0.5).exp() * genesis.randn_like(mu)

    def decode(self, z):
        """Bernoulli logits of the 784 pixels."""
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def elbo_terms(logits, x, mu, logvar):
    """Summed over the batch: the reconstruction BCE and the KL term (their sum is
    the negative ELBO)."""
    bce = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="sum")
    kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum()
    return bce, kl


def run_epoch(model, loader, args, opt=None, desc=""):
    """One pass (training when `opt` is given); returns per-image means of the ELBO,
    the BCE and the KL."""
    bce_sum = kl_sum = seen = 0
    training = opt is not None
    model.train(training)
    bar = progress(loader, PROG, desc=desc, unit="batch", disable=args.quiet or not training,
                   dynamic_ncols=True)
    with genesis.set_grad_enabled(training):
        for step, (images, _) in enumerate(bar):
            x = images.to(args.device)
            logits, mu, logvar = model(x)
            bce, kl = elbo_terms(logits, x, mu, logvar)
            if training:
                opt.zero_grad()
                ((bce + kl) * (1.0 / x.shape[0])).backward()
                opt.step()
            bce_sum += bce.item()
            kl_sum += kl.item()
            seen += x.shape[0]
            if step % 20 == 0:
                bar.set_postfix(elbo=f"{-(bce_sum + kl_sum) / seen:.2f}")
    bar.close()
    return {"elbo": -(bce_sum + kl_sum) / seen, "bce": bce_sum / seen, "kl": kl_sum / seen}


def save_pictures(model, originals, fixed_z, out, epoch):
    """Reconstructions of `originals` (up to 8 per row, each row of originals followed
    by its reconstructions) and samples decoded from `fixed_z`; returns the two paths."""
    model.eval()
    cols = min(8, originals.shape[0])
    originals = originals[:originals.shape[0] // cols * cols]
    with genesis.no_grad():
        mu, _ = model.encode(originals)
        recon = model.decode(mu).sigmoid().reshape(-1, 1, 28, 28)
        samples = model.decode(fixed_z).sigmoid().reshape(-1, 1, 28, 28)
        pairs = genesis.stack([originals.reshape(-1, cols, 1, 28, 28),
                               recon.reshape(-1, cols, 1, 28, 28)], 1).reshape(-1, 1, 28, 28)
    recon_png = os.path.join(out, f"vae-recon-{epoch}.png")
    samples_png = os.path.join(out, f"vae-samples-{epoch}.png")
    save_image(pairs, recon_png, nrow=cols)
    save_image(samples, samples_png, nrow=8)
    return recon_png, samples_png


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--latent", type=int, default=20, help="dims of z")
    p.add_argument("--lr", type=float, default=1e-3)
    add_common_arguments(p)
    return p.parse_args(argv)


def main(argv=None):
    """Entry point; returns the last epoch's train and test ELBO terms
    ({"train": {...}, "test": {...}} with keys elbo, bce, kl in nats per image)."""
    args = parse_args(argv)
    if args.threads:
        genesis.set_num_threads(args.threads)
    train_set, test_set = mnist_splits(args)
    os.makedirs(args.out, exist_ok=True)
    test_loader = DataLoader(test_set, batch_size=1000)
    genesis.manual_seed(args.seed)
    model = VAE(args.latent).to(args.device)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    originals = next(iter(DataLoader(test_set, batch_size=32)))[0].to(args.device)
    fixed_z = genesis.randn(64, args.latent, generator=genesis.Generator().manual_seed(
        args.seed), device=args.device)
    print(f"genesis {genesis.__version__}: VAE on MNIST ({len(train_set)} train, "
          f"{len(test_set)} test images), {genesis.get_num_threads()} threads")
    result = {}
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        train = run_epoch(model, epoch_loader(train_set, args.batch_size, args.seed, epoch),
                          args, opt, f"epoch {epoch + 1}/{args.epochs}")
        seconds = time.perf_counter() - t0
        test = run_epoch(model, test_loader, args)
        pictures = save_pictures(model, originals, fixed_z, args.out, epoch + 1)
        print(f"epoch {epoch + 1}: train ELBO {train['elbo']:.2f} (BCE {train['bce']:.2f}, KL "
              f"{train['kl']:.2f}), test ELBO {test['elbo']:.2f} (BCE {test['bce']:.2f}, KL "
              f"{test['kl']:.2f}) nats/image, {seconds:.1f} s; pictures: {', '.join(pictures)}")
        result = {"train": train, "test": test}
    return result


if __name__ == "__main__":
    main()
