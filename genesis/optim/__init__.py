"""genesis.optim: optimizers and learning-rate schedulers (PyTorch's `torch.optim`).

Every update runs as one fused kernel per parameter (csrc/optim.cpp on the CPU).
"""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .rmsprop import RMSprop
from .adagrad import Adagrad
from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
