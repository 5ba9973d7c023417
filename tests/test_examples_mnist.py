"""The MNIST example (genesis.examples.mnist) on real data: a small model trained on a
subset reaches a clear accuracy, and --resume continues exactly like an uninterrupted run."""
import numpy as np

import genesis as G
from genesis.examples import mnist


def _run(root, out, *extra):
    return mnist.main(["--data", root, "--out", str(out), "--quiet", "--threads", "2", *extra])


def test_mlp_learns_on_a_subset(mnist_root, tmp_path):
    acc = _run(mnist_root, tmp_path, "--model", "mlp", "--epochs", "1",
               "--train-subset", "5000", "--test-subset", "2000")
    assert acc > 80.0  # chance is 10 %
    ckpt = G.load(str(tmp_path / "mnist-mlp.ckpt"))
    assert ckpt["epoch"] == 1 and ckpt["history"]["test_acc"] == [acc]


def test_cnn_learns_on_a_subset(mnist_root, tmp_path):
    acc = _run(mnist_root, tmp_path, "--model", "cnn", "--epochs", "1",
               "--train-subset", "2000", "--test-subset", "1000")
    assert acc > 50.0


def test_resume_continues_exactly(mnist_root, tmp_path):
    subset = ["--model", "mlp", "--train-subset", "1000", "--test-subset", "500"]
    _run(mnist_root, tmp_path / "straight", *subset, "--epochs", "2")
    _run(mnist_root, tmp_path / "split", *subset, "--epochs", "2", "--stop-after", "1")
    _run(mnist_root, tmp_path / "split", *subset, "--epochs", "2",
         "--resume", str(tmp_path / "split" / "mnist-mlp.ckpt"))
    a = G.load(str(tmp_path / "straight" / "mnist-mlp.ckpt"))
    b = G.load(str(tmp_path / "split" / "mnist-mlp.ckpt"))
    assert a["history"]["test_acc"] == b["history"]["test_acc"]
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    for key, value in a["model"].items():
        np.testing.assert_array_equal(value.numpy(), b["model"][key].numpy(), err_msg=key)
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
