"""What the examples share: for the MNIST ones command-line options, data,
normalization, evaluation, matplotlib and PNG image grids; for the classifiers
(MNIST and sentiment) progress bars and the training epoch."""
import os
import struct
import sys
import zlib

import genesis
from genesis.data import DataLoader, Subset
from genesis.data.datasets import MNIST

MEAN, STD = 0.1307, 0.3081  # of the MNIST training pixels in [0, 1]


def add_common_arguments(p):
    """Options every MNIST example takes: --device --threads --seed --data --out
    --train-subset --test-subset --quiet."""
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=os.environ.get("GENESIS_DATA",
                                                     os.path.join("~", ".cache", "genesis")),
                   help="directory holding (or caching) MNIST")
    p.add_argument("--out", default="runs", help="directory for checkpoints and pictures")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="train on the first N training images only")
    p.add_argument("--test-subset", type=int, default=None, metavar="N",
                   help="evaluate on the first N test images only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def mnist_splits(args):
    """The MNIST train and test sets, cut to --train-subset / --test-subset."""
    train_set = MNIST(args.data, train=True)
    test_set = MNIST(args.data, train=False)
    if args.train_subset:
        train_set = Subset(train_set, range(min(args.train_subset, len(train_set))))
    if args.test_subset:
        test_set = Subset(test_set, range(min(args.test_subset, len(test_set))))
    return train_set, test_set


def epoch_loader(dataset, batch_size, seed, epoch):
    """A shuffling loader whose order depends only on (seed, epoch), so a resumed run
    shuffles exactly as the uninterrupted one."""
    shuffle = genesis.Generator().manual_seed(seed * 1000 + epoch)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=shuffle)


def normalize(images):
    """Standardize MNIST pixels in [0, 1] with the training set's mean and std."""
    return (images - MEAN) * (1.0 / STD)


def evaluate(model, loader, device):
    """Accuracy (in %) of the classifier `model` over `loader` (inputs normalized)."""
    model.eval()
    correct = total = 0
    with genesis.no_grad():
        for images, labels in loader:
            logits = model(normalize(images.to(device)))
            correct += int((logits.argmax(1) == labels.to(device)).sum().item())
            total += labels.shape[0]
    model.train()
    return 100.0 * correct / max(total, 1)


def progress(iterable, prog, **kw):
    """A tqdm progress bar over `iterable`; exits with an install hint naming the
    example `prog` when tqdm is missing."""
    try:
        from tqdm import tqdm
    except ImportError:
        sys.exit(f"{prog} shows its progress with tqdm: pip install tqdm "
                 "(or pip install 'genesis-autograd[examples]')")
    return tqdm(iterable, **kw)


def train_classifier_epoch(model, loader, opt, split, desc, quiet, prog, postfix_every):
    """One training pass of classifier `model` over `loader` with the cross-entropy
    loss; `split(batch)` gives the model's inputs (a tuple) and the labels of a batch.
    A progress bar (`desc`; none when `quiet`; tqdm install hint naming `prog`) shows
    the running loss and accuracy every `postfix_every` steps.  Returns (mean loss,
    accuracy in %)."""
    loss_sum = correct = seen = 0
    bar = progress(loader, prog, desc=desc, unit="batch", leave=True, disable=quiet,
                   dynamic_ncols=True)
    for step, batch in enumerate(bar):
        inputs, labels = split(batch)
        logits = model(*inputs)
        loss = genesis.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n = labels.shape[0]
        loss_sum += loss.item() * n
        correct += int((logits.detach().argmax(1) == labels).sum().item())
        seen += n
        if step % postfix_every == 0:
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100.0 * correct / seen:.2f}%")
    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100.0 * correct / seen:.2f}%")
    bar.close()
    return loss_sum / seen, 100.0 * correct / seen


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_image(images, path, nrow=8, padding=2):
    """Write images (N, 1, H, W) or (N, H, W) with values in [0, 1] as one grayscale
    PNG grid, `nrow` images per row and `padding` black pixels between them (as
    torchvision's `save_image`).  Needs no imaging library."""
    with genesis.no_grad():
        n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
        pixels = genesis.round(images.detach().reshape(n, h, w).clamp(0, 1) * 255)
        tiles = pixels.to(genesis.int32).cpu().numpy().astype("uint8")
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = bytearray((rows * (h + padding) + padding) * (cols * (w + padding) + padding))
    width = cols * (w + padding) + padding
    for i in range(n):
        top, left = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        for y in range(h):
            start = (top + y) * width + left
            grid[start:start + w] = tiles[i, y].tobytes()
    height = len(grid) // width
    _write_png(path, bytes(grid), width, height)


def _write_png(path, gray, width, height):
    """8-bit grayscale PNG: signature, IHDR, one zlib IDAT of unfiltered rows, IEND."""
    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data +
                struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + gray[y * width:(y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
                chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
