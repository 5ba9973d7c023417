"""genesis.examples._common.train_classifier_epoch, the training epoch the MNIST and
sentiment classifiers share: its returned mean loss and accuracy, and when it updates
the progress bar."""
import pytest

import genesis as G
from genesis import nn, optim
from genesis.data import DataLoader, TensorDataset
from genesis.examples import _common


class _Bar:
    """Stands in for the tqdm bar: iterates the loader and records set_postfix calls."""

    def __init__(self, iterable):
        self.iterable, self.postfixes, self.closed = iterable, [], False

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, **kw):
        self.postfixes.append(kw)

    def close(self):
        self.closed = True


def test_train_classifier_epoch_loss_accuracy_and_postfix(monkeypatch):
    G.manual_seed(0)
    x, y = G.randn(10, 4), G.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    model = nn.Linear(4, 3)
    opt = optim.SGD(model.parameters(), lr=0.0)  # the model stays fixed: exact expectations
    with G.no_grad():
        logits = model(x)
        want_loss = nn.functional.cross_entropy(logits, y).item()
        want_acc = 100.0 * (logits.argmax(1) == y).sum().item() / 10
    bars = []
    monkeypatch.setattr(_common, "progress",
                        lambda iterable, prog, **kw: bars.append(_Bar(iterable)) or bars[-1])
    seen_batches = []

    def split(batch):
        inputs, labels = batch
        seen_batches.append(labels.shape[0])
        return (inputs,), labels

    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    loss, acc = _common.train_classifier_epoch(model, loader, opt, split, "epoch 1/1", True,
                                               "test", postfix_every=2)
    assert seen_batches == [4, 4, 2]
    assert loss == pytest.approx(want_loss, rel=1e-6) and acc == pytest.approx(want_acc)
    (bar,) = bars
    assert bar.closed and len(bar.postfixes) == 3  # steps 0 and 2, then the epoch's total
    assert bar.postfixes[-1] == {"loss": f"{loss:.4f}", "acc": f"{acc:.2f}%"}
    assert all(p.grad is not None for p in model.parameters())
