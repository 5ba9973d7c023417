"""Data sets that genesis can load without network access beyond the package registry."""
from ._download import DownloadError
from .mnist import MNIST
from .text import RottenTomatoes, hamlet_text

__all__ = ["DownloadError", "MNIST", "RottenTomatoes", "hamlet_text"]
