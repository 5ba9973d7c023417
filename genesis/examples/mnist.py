"""Train a classifier on real MNIST: `python -m genesis.examples.mnist` (or `genesis-mnist`).

Two models: `mlp` (784-256-256-10, Adam with cosine annealing) and `cnn` (a LeNet:
conv 20@5x5, pool, conv 50@5x5, pool, 500 hidden units; SGD with momentum and StepLR).
A progress bar shows the running loss and accuracy; after every epoch the test
accuracy is measured and a checkpoint (model, optimizer, scheduler, history) is
written, from which `--resume` continues exactly as an uninterrupted run would.
At the end the loss/accuracy curves are plotted to a PNG (needs matplotlib).
"""
import argparse
import os
import sys
import time

import genesis
from genesis import nn, optim
from genesis.data import DataLoader
from genesis.examples._common import (add_common_arguments, epoch_loader, evaluate,
                                      mnist_splits, normalize, pyplot, train_classifier_epoch)

DEFAULTS = {  # per model: optimizer and learning rate that reach the target in 5 epochs
    "mlp": {"lr": 1e-3},
    "cnn": {"lr": 0.05},
}


def build_model(name):
    """The network called `name` ("mlp" or "cnn")."""
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                             nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))
    raise ValueError(f"unknown model {name!r} (expected 'mlp' or 'cnn')")


def build_optimizer(name, model, lr, epochs):
    """Optimizer and per-epoch learning-rate scheduler for model `name`."""
    if name == "mlp":
        opt = optim.Adam(model.parameters(), lr=lr)
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    else:
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.3)
    return opt, sched


def train_epoch(model, loader, opt, device, desc, quiet, prog="genesis.examples.mnist"):
    """One pass of classifier `model` over `loader` (cross-entropy loss, inputs
    normalized); returns (mean loss, accuracy in %)."""
    def split(batch):
        images, labels = batch
        return (normalize(images.to(device)),), labels.to(device)

    return train_classifier_epoch(model, loader, opt, split, desc, quiet, prog,
                                  postfix_every=20)


def plot(history, path, title):
    """Loss and accuracy curves per epoch as a PNG; returns False without matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    epochs = list(range(1, len(history["train_loss"]) + 1))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, history["train_loss"], marker="o")
    ax1.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax2.plot(epochs, history["train_acc"], marker="o", label="train")
    ax2.plot(epochs, history["test_acc"], marker="o", label="test")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def parse_args(argv):
    p = argparse.ArgumentParser(prog="genesis-mnist", description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 (mlp), 0.05 (cnn)")
    p.add_argument("--resume", metavar="CHECKPOINT", default=None,
                   help="continue the run saved in this checkpoint")
    p.add_argument("--stop-after", type=int, default=None, metavar="EPOCH",
                   help="stop after this epoch (continue later with --resume)")
    add_common_arguments(p)
    return p.parse_args(argv)


def main(argv=None):
    """Entry point of `python -m genesis.examples.mnist`; returns the final test accuracy."""
    args = parse_args(argv)
    if args.threads:
        genesis.set_num_threads(args.threads)
    lr = args.lr if args.lr is not None else DEFAULTS[args.model]["lr"]
    train_set, test_set = mnist_splits(args)
    test_loader = DataLoader(test_set, batch_size=1000)

    genesis.manual_seed(args.seed)
    model = build_model(args.model).to(args.device)
    opt, sched = build_optimizer(args.model, model, lr, args.epochs)
    history = {"train_loss": [], "train_acc": [], "test_acc": [], "seconds": []}
    start_epoch = 0
    if args.resume:
        ckpt = genesis.load(args.resume)
        if ckpt.get("model_name") != args.model:
            sys.exit(f"{args.resume} holds a {ckpt.get('model_name')!r} model, "
                     f"not {args.model!r}")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        history = ckpt["history"]
        start_epoch = ckpt["epoch"]
        print(f"resumed from {args.resume} after epoch {start_epoch}")

    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, f"mnist-{args.model}.ckpt")
    print(f"genesis {genesis.__version__}: {args.model} on MNIST ({len(train_set)} train, "
          f"{len(test_set)} test images), {genesis.get_num_threads()} threads, lr {lr}")
    last = args.epochs if args.stop_after is None else min(args.epochs, args.stop_after)
    for epoch in range(start_epoch, last):
        loader = epoch_loader(train_set, args.batch_size, args.seed, epoch)
        t0 = time.perf_counter()
        loss, acc = train_epoch(model, loader, opt, args.device,
                                f"epoch {epoch + 1}/{args.epochs}", args.quiet)
        seconds = time.perf_counter() - t0
        sched.step()
        test_acc = evaluate(model, test_loader, args.device)
        for key, value in (("train_loss", loss), ("train_acc", acc), ("test_acc", test_acc),
                           ("seconds", seconds)):
            history[key].append(value)
        print(f"epoch {epoch + 1}: loss {loss:.4f}, train accuracy {acc:.2f} %, "
              f"test accuracy {test_acc:.2f} %, {seconds:.1f} s")
        genesis.save({"model_name": args.model, "model": model.state_dict(),
                      "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                      "epoch": epoch + 1, "history": history}, ckpt_path)

    final = history["test_acc"][-1] if history["test_acc"] else evaluate(model, test_loader,
                                                                         args.device)
    print(f"test accuracy: {final:.2f} % ({args.model}, {len(history['test_acc'])} epochs, "
          f"{sum(history['seconds']):.1f} s of training)")
    print(f"checkpoint: {ckpt_path}")
    png = os.path.join(args.out, f"mnist-{args.model}.png")
    if plot(history, png, f"genesis {args.model} on MNIST"):
        print(f"plot: {png}")
    else:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
    return final


if __name__ == "__main__":
    main()
