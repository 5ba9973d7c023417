"""Neural-network building blocks: modules, layers, initialization, functional ops."""
from . import functional
from . import init
from . import utils
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .parameter import Parameter

__all__ = ["Parameter", "functional", "init", "utils"] + _modules_all
from .modules.particle import ParticleLayer, ParticlePruning  # noqa: E402
__all__ += ["ParticleLayer", "ParticlePruning"]
