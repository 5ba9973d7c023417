"""Data sets that genesis can load without network access beyond the package registry."""
from .mnist import MNIST

__all__ = ["MNIST"]
