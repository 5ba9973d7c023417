"""Datasets, samplers and the DataLoader (PyTorch's `torch.utils.data`), plus data sets
that ship offline in `genesis.data.datasets` (MNIST)."""
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler)
from .dataloader import DataLoader, default_collate, default_convert
from . import datasets

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "Sampler",
           "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler",
           "DataLoader", "default_collate", "default_convert", "datasets"]
