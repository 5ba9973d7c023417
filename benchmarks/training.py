"""Training-step and convolution cases of the benchmark suite (genesis vs PyTorch).

The same architectures are built from each framework's own `nn`, `optim` and
`functional`, on the same random batch: the MLP 784-256-256-10 with SGD momentum
and the LeNet of genesis.examples.mnist (conv 20@5x5, pool, conv 50@5x5, pool,
500 hidden) with Adam, batch 128; and conv2d forward + backward alone (LeNet's
two layers and a 3x3, 64->64 channel, 32x32, batch 64 layer).  One step is
zero_grad + forward + cross-entropy + backward + optimizer step.  numpy has no
autograd, so its column stays empty.  These rows are not value-checked: layer
and optimizer parity with PyTorch is proven by the test suite.
"""
import numpy as np

BATCH = 128
MIN_TIME = 0.4  # seconds per sample: with 9 rounds, at least 50 LeNet steps


def mlp(nn):
    """The MNIST MLP 784-256-256-10 of genesis.examples.mnist (without its Flatten: the
    benchmarks feed flat (batch, 784) rows), built from `nn` (genesis.nn or torch.nn)."""
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def lenet(nn):
    """The LeNet of genesis.examples.mnist, built from `nn` (genesis.nn or torch.nn)."""
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


# name: (optimizer from `optim` (genesis.optim or torch.optim) and parameters)
OPTIMIZERS = {
    "sgd": lambda optim, p: optim.SGD(p, lr=0.01, momentum=0.9),
    "adam": lambda optim, p: optim.Adam(p, lr=1e-3),  # as genesis.examples.mnist --model mlp
}

MODELS = {
    "MLP 784-256-256-10, SGD momentum": (mlp, (BATCH, 784), OPTIMIZERS["sgd"]),
    "LeNet CNN, Adam": (lenet, (BATCH, 1, 28, 28), OPTIMIZERS["adam"]),
}


def make_step(lib, model, opt):
    """step(x, y): one training step of `model` built from `lib` (genesis or torch):
    zero_grad, forward, cross-entropy, backward, optimizer step; returns the loss."""
    cross_entropy = lib.nn.functional.cross_entropy

    def step(x, y):
        opt.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def training_case(Case, per_fw, libs, name):
    build_model, shape, make_opt = MODELS[name]

    def build():
        rng = np.random.default_rng(5)
        x_np = rng.random(shape, dtype=np.float32)
        y_np = rng.integers(0, 10, BATCH).astype(np.int64)

        def make(fw):
            if fw == "numpy":
                return None
            lib = libs[fw]
            lib.manual_seed(0)
            model = build_model(lib.nn)
            opt = make_opt(lib.optim, model.parameters())
            x, y = lib.from_numpy(x_np), lib.from_numpy(y_np)
            step = make_step(lib, model, opt)
            return lambda: step(x, y)
        return per_fw(make)
    case = Case("training", f"{name}, batch {BATCH}", "ms", None, build, None)
    case.min_time = MIN_TIME
    return case


CONVS = {  # name: (input shape, out channels, kernel, padding)
    "conv2d 1->20 5x5, 28x28, batch 128": ((BATCH, 1, 28, 28), 20, 5, 0),
    "conv2d 20->50 5x5, 12x12, batch 128": ((BATCH, 20, 12, 12), 50, 5, 0),
    "conv2d 64->64 3x3 pad 1, 32x32, batch 64": ((64, 64, 32, 32), 64, 3, 1),
}


def conv_case(Case, per_fw, libs, name):
    shape, cout, k, pad = CONVS[name]

    def build():
        rng = np.random.default_rng(6)
        x_np = rng.standard_normal(shape, dtype=np.float32)
        w_np = (rng.standard_normal((cout, shape[1], k, k)) * 0.1).astype(np.float32)
        b_np = rng.standard_normal(cout).astype(np.float32)

        def make(fw):
            if fw == "numpy":
                return None
            lib = libs[fw]
            x, w, b = (lib.from_numpy(a.copy()).requires_grad_() for a in (x_np, w_np, b_np))
            conv2d = lib.nn.functional.conv2d

            def step():
                x.grad = w.grad = b.grad = None
                y = conv2d(x, w, b, padding=pad)
                y.sum().backward()
                return y
            return step
        return per_fw(make)
    case = Case("training", f"{name}, forward + backward", "ms", None, build, None)
    case.min_time = MIN_TIME
    return case


def cases(Case, per_fw, libs, quick):
    out = [training_case(Case, per_fw, libs, n) for n in MODELS]
    convs = list(CONVS)[-1:] if quick else list(CONVS)
    return out + [conv_case(Case, per_fw, libs, n) for n in convs]
