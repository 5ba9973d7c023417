"""A CNN with a ParticleLayer on MNIST, pruned after training:
`python -m genesis.examples.particle_mnist`.

The network is a small LeNet-style feature extractor (conv 16@5x5, pool, conv 32@5x5,
pool: 512 features) whose hidden classifier layer is an
`nn.ParticleLayer(512, --hidden, --particles)` followed by `Linear(--hidden, 10)`.  It is trained with SGD (momentum, StepLR) as
`genesis.examples.mnist`'s CNN; the layer's gate statistics are reset at the start of
every epoch, so after training they describe the last epoch.  The test accuracy is
measured, the layer is pruned to the particles whose active fraction (share of
samples giving the particle a gate of at least --tau) exceeds --tau, and the accuracy
is measured again, then after --finetune-epochs of training of the pruned network.

Nothing in the loss asks the gate to spread the samples over the particles, and a
particle that wins a little more often is trained more and wins more: the gate tends
to concentrate on a few particles (on full MNIST, often one), which is what makes
pruning nearly free here.
"""
import argparse
import time

import genesis
from genesis import nn
from genesis.data import DataLoader
from genesis.examples._common import add_common_arguments, epoch_loader, evaluate, mnist_splits
from genesis.examples.mnist import build_optimizer, train_epoch

PROG = "genesis.examples.particle_mnist"
PARTICLE = 7  # index of the ParticleLayer in the Sequential


def build_model(hidden, particles, tau):
    """Conv features, then ParticleLayer(512, hidden, particles) and Linear(hidden, 10)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.ParticleLayer(512, hidden, particles, tau=tau),
        nn.Linear(hidden, 10))


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def train(model, train_set, args, epochs, lr, tag):
    """`epochs` epochs of SGD; the ParticleLayer's statistics cover the last one."""
    opt, sched = build_optimizer("cnn", model, lr, epochs)
    layer = model[PARTICLE]
    for epoch in range(epochs):
        layer.reset_statistics()
        loader = epoch_loader(train_set, args.batch_size, args.seed, epoch)
        t0 = time.perf_counter()
        loss, acc = train_epoch(model, loader, opt, args.device,
                                f"{tag} {epoch + 1}/{epochs}", args.quiet, prog=PROG)
        sched.step()
        print(f"{tag} {epoch + 1}: loss {loss:.4f}, train accuracy {acc:.2f} %, "
              f"{time.perf_counter() - t0:.1f} s")


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--particles", type=int, default=8, help="K, particles of the layer")
    p.add_argument("--hidden", type=int, default=128, help="output features of each particle")
    p.add_argument("--tau", type=float, default=0.1,
                   help="gate level that makes a sample count for a particle, and the "
                        "active fraction a particle must exceed to survive pruning")
    p.add_argument("--finetune-epochs", type=int, default=1,
                   help="epochs of training after pruning (0: none)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    add_common_arguments(p)
    return p.parse_args(argv)


def main(argv=None):
    """Entry point; returns {"before": acc, "pruned": acc, "finetuned": acc or None,
    "parameters_before": n, "parameters_after": n, "pruning": ParticlePruning}."""
    args = parse_args(argv)
    if args.threads:
        genesis.set_num_threads(args.threads)
    train_set, test_set = mnist_splits(args)
    test_loader = DataLoader(test_set, batch_size=1000)
    genesis.manual_seed(args.seed)
    model = build_model(args.hidden, args.particles, args.tau).to(args.device)
    print(f"genesis {genesis.__version__}: particle CNN on MNIST ({len(train_set)} train, "
          f"{len(test_set)} test images), {genesis.get_num_threads()} threads")
    print(model[PARTICLE])
    train(model, train_set, args, args.epochs, args.lr, "epoch")

    layer = model[PARTICLE]
    stats = layer.statistics()
    print(f"particle statistics over the last epoch ({stats['num_samples']} samples, "
          f"tau {layer.tau}):")
    for k, (mean, frac) in enumerate(zip(stats["mean_gate"], stats["active_fraction"])):
        print(f"  particle {k}: mean gate {mean:.3f}, active fraction {frac:.3f}")
    before = evaluate(model, test_loader, args.device)
    params_before = count_parameters(model)
    print(f"test accuracy before pruning: {before:.2f} % ({params_before:,} parameters)")

    pruned_layer = layer.prune(args.tau)
    model[PARTICLE] = pruned_layer
    pruned = evaluate(model, test_loader, args.device)
    params_after = count_parameters(model)
    print(f"pruning: {pruned_layer.pruning}")
    print(f"test accuracy after pruning: {pruned:.2f} % ({params_after:,} parameters, "
          f"{params_before - params_after:,} fewer)")
    finetuned = None
    if args.finetune_epochs > 0:
        train(model, train_set, args, args.finetune_epochs, args.lr * 0.1, "fine-tune")
        finetuned = evaluate(model, test_loader, args.device)
        print(f"test accuracy after pruning and {args.finetune_epochs} fine-tune epoch(s): "
              f"{finetuned:.2f} %")
    return {"before": before, "pruned": pruned, "finetuned": finetuned,
            "parameters_before": params_before, "parameters_after": params_after,
            "pruning": pruned_layer.pruning}


if __name__ == "__main__":
    main()
