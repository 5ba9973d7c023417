"""Training on device "cuda" follows training on the cpu: a small MLP and a small CNN, built
from the same initial weights, take the same optimizer steps on both devices and end with
the same parameters (within rounding).  Runs the kernels in the CPU emulator unless
GENESIS_CUDA_EMULATE says otherwise."""
import os

os.environ.setdefault("GENESIS_CUDA_EMULATE", "1")

import copy  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import genesis as G  # noqa: E402
from genesis import nn  # noqa: E402

STEPS = 3


def _mlp():
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.LayerNorm(16), nn.Linear(16, 5))


def _cnn():
    # no bias before the batch norm: its gradient is rounding noise, which Adam would
    # amplify into steps of size lr in random directions
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))


OPTIMIZERS = {
    "sgd_momentum": lambda p: G.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: G.optim.Adam(p, lr=1e-2),
}


def _train(model, opt, x, y, device):
    model.train()
    for _ in range(STEPS):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x.to(device)), y.to(device))
        loss.backward()
        opt.step()
    return loss


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("build,shape", [(_mlp, (9, 12)), (_cnn, (6, 1, 8, 8))],
                         ids=["mlp", "cnn"])
def test_same_steps_give_same_parameters(build, shape, optimizer):
    G.manual_seed(0)
    cpu_model = build().to(G.float64)
    cuda_model = copy.deepcopy(cpu_model).to("cuda")
    rng = np.random.default_rng(1)
    x = G.tensor(rng.standard_normal(shape), dtype=G.float64)
    y = G.tensor(rng.integers(0, 5, shape[0]))
    loss_cpu = _train(cpu_model, OPTIMIZERS[optimizer](cpu_model.parameters()), x, y, "cpu")
    loss_cuda = _train(cuda_model, OPTIMIZERS[optimizer](cuda_model.parameters()), x, y, "cuda")
    assert loss_cuda.device == G.device("cuda")
    np.testing.assert_allclose(loss_cuda.item(), loss_cpu.item(), rtol=1e-10)
    moved = 0
    start = build().to(G.float64)  # only to count which parameters the steps changed
    for (name, p), q in zip(cpu_model.state_dict().items(), cuda_model.state_dict().values()):
        assert q.device == G.device("cuda"), name
        np.testing.assert_allclose(q.cpu().numpy(), p.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)
        moved += not np.array_equal(p.numpy(), start.state_dict()[name].numpy())
    assert moved > 0
    # the optimizer state lives on the parameters' device
    opt_state = OPTIMIZERS[optimizer](cuda_model.parameters())
    _train(cuda_model, opt_state, x, y, "cuda")
    for state in opt_state.state.values():
        for v in state.values():
            if isinstance(v, G.Tensor) and v.ndim:
                assert v.device == G.device("cuda")
