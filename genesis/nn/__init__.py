"""Neural-network building blocks: modules, layers, initialization, functional ops."""
from . import functional
