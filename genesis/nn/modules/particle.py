"""ParticleLayer: a softly gated mixture of K affine "particles" with pruning.

A ParticleLayer holds K particles, each a weight matrix W_k (out x in) and bias b_k,
and a gating matrix G (in x K).  For an input x (..., in)

    g = softmax(x @ G)                       over the K particles
    y = sum_k g_k * act(x @ W_k.T + b_k)

All K particles run as one GEMM (their weights stacked into a (K*out) x in matrix);
the gates then weight and sum the K activations.  While training, the layer records
how much each particle is used; `prune()` builds a smaller layer from the particles
that were used.
"""
import copy
import dataclasses

from ... import dtypes as _dt
from ...autograd.grad_mode import is_grad_enabled, no_grad
from ...ops.creation import empty, tensor, zeros
from .. import functional as F
from .. import init
from ..functional.particle import particle_linear
from ..parameter import Parameter
from .module import Module

__all__ = ["ParticleLayer", "ParticlePruning"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "tanh": F.tanh,
                "sigmoid": F.sigmoid, "elu": F.elu, "leaky_relu": F.leaky_relu,
                "softplus": F.softplus}


@dataclasses.dataclass(frozen=True)
class ParticlePruning:
    """What `ParticleLayer.prune` did: the original indices of the particles it
    kept and removed, and the parameter counts of the layer before and after."""

    kept: tuple
    removed: tuple
    parameters_before: int
    parameters_after: int

    @property
    def parameters_removed(self):
        """How many parameters pruning removed."""
        return self.parameters_before - self.parameters_after

    def __str__(self):
        return (f"kept {len(self.kept)} of {len(self.kept) + len(self.removed)} particles "
                f"{list(self.kept)}: {self.parameters_before:,} -> {self.parameters_after:,} "
                f"parameters ({self.parameters_removed:,} removed)")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ParticleLayer: {name} must be a positive int, got {value!r}")


def _check_tau(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{where}: tau must be a number in [0, 1], got {value!r}")


class ParticleLayer(Module):
    """A mixture of `num_particles` affine maps ("particles") mixed by a learned
    softmax gate (see the module docstring for the formula).

    Parameters: `weight` (K, out_features, in_features) and `bias` (K, out_features),
    each particle initialized like an `nn.Linear(in_features, out_features)`, and
    `gate` (in_features, K), initialized like the weight of `nn.Linear(in_features, K)`
    (transposed).  `activation` is one of 'relu', 'gelu', 'silu', 'tanh', 'sigmoid',
    'elu', 'leaky_relu', 'softplus', a callable on tensors, a Module, or None for none.

    Statistics.  In training mode with grad enabled, every forward adds to three
    buffers (part of `state_dict`): `gate_sum` (K,), the sum of each particle's gate
    over the samples seen; `active_count` (K,), how many samples gave the particle a
    gate of at least `tau`; and `num_samples_tracked`.  Every position of the leading
    dims of the input counts as one sample.  `mean_gate` and `active_fraction` are the
    derived per-particle averages, `statistics()` returns them together, and
    `reset_statistics()` clears them.

    Pruning.  `prune()` returns a new, smaller layer with the particles whose active
    fraction exceeds a threshold; see its docstring for how its output relates to
    this layer's.
    """

    def __init__(self, in_features, out_features, num_particles, activation="relu", bias=True,
                 tau=0.1, device=None, dtype=None):
        super().__init__()
        _positive_int("in_features", in_features)
        _positive_int("out_features", out_features)
        _positive_int("num_particles", num_particles)
        _check_tau(tau, "ParticleLayer")
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(f"ParticleLayer: unknown activation {activation!r} (expected "
                                 f"one of {', '.join(map(repr, _ACTIVATIONS))}, a callable "
                                 "or None)")
        elif activation is not None and not callable(activation):
            raise TypeError("ParticleLayer: activation must be a name, a callable or None, "
                            f"got {type(activation).__name__}")
        self.in_features = in_features
        self.out_features = out_features
        self.num_particles = num_particles
        self.activation = activation
        self.tau = float(tau)
        self.pruning = None  # set on layers made by prune()
        k = num_particles
        self.weight = Parameter(empty(k, out_features, in_features, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(empty(k, out_features, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.gate = Parameter(empty(in_features, k, dtype=dtype, device=device))
        self.register_buffer("gate_sum", zeros(k, dtype=dtype, device=device))
        self.register_buffer("active_count", zeros(k, dtype=_dt.int64, device=device))
        self.register_buffer("num_samples_tracked", tensor(0, dtype=_dt.int64, device=device))
        self.reset_parameters()

    def reset_parameters(self):
        """Each particle as `nn.Linear` initializes its weight and bias:
        U(-1/sqrt(in_features), 1/sqrt(in_features)); the gate likewise.
        Also clears the statistics."""
        bound = 1.0 / self.in_features ** 0.5
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)
        init.uniform_(self.gate, -bound, bound)
        self.reset_statistics()

    def reset_statistics(self):
        """Forget the recorded gate statistics."""
        with no_grad():
            self.gate_sum.zero_()
            self.active_count.zero_()
            self.num_samples_tracked.zero_()

    def _activation_fn(self):
        a = self.activation
        return _ACTIVATIONS[a] if isinstance(a, str) else a

    def forward(self, input):
        y, gates = particle_linear(input, self.weight, self.bias, self.gate,
                                   self._activation_fn(), return_gates=True)
        if self.training and is_grad_enabled():
            with no_grad():
                g = gates.reshape(-1, self.num_particles)
                self.gate_sum.add_(g.sum(0).to(self.gate_sum.dtype))
                self.active_count.add_((g >= self.tau).sum(0))
                self.num_samples_tracked.add_(g.shape[0])
        return y

    @property
    def mean_gate(self):
        """Each particle's gate averaged over the recorded samples (K,); zeros before any."""
        with no_grad():
            return self.gate_sum / max(int(self.num_samples_tracked.item()), 1)

    @property
    def active_fraction(self):
        """Each particle's share of recorded samples whose gate reached `tau` (K,),
        in the dtype of `gate_sum`; zeros before any sample."""
        with no_grad():
            return self.active_count.to(self.gate_sum.dtype) / \
                max(int(self.num_samples_tracked.item()), 1)

    def statistics(self):
        """The recorded statistics: {"num_samples": int, "tau": float,
        "mean_gate": [K floats], "active_fraction": [K floats]}."""
        return {"num_samples": int(self.num_samples_tracked.item()), "tau": self.tau,
                "mean_gate": self.mean_gate.tolist(),
                "active_fraction": self.active_fraction.tolist()}

    def num_parameters(self):
        """How many numbers the layer's parameters hold."""
        return sum(p.numel() for p in self.parameters())

    def prune(self, tau=None):
        """A new ParticleLayer with only the particles whose active fraction exceeds
        `tau` (default: the layer's `tau`).

        `tau` here is a threshold on `active_fraction`; the gate level at which a
        sample counted as activating a particle was the layer's `tau` while the
        statistics were recorded.  If no particle exceeds it, the one with the largest
        active fraction (then mean gate) is kept.  The kept particles' weights, biases
        and gate columns are copied in their original order; `activation` and `tau`
        carry over (a Module activation is deep-copied), and the new layer
        starts with empty statistics and in this layer's training mode.  The new
        layer's `pruning` attribute is a `ParticlePruning` naming the kept and removed
        particles and the parameter counts before and after (`str()` of it is a
        one-line summary).

        How the outputs relate.  A softmax over a subset of the logits is the original
        softmax renormalized over that subset, so with S the kept particles,
        removed mass r = sum_{k not in S} g_k and h_k = act(x @ W_k.T + b_k):

            y_pruned = (y - sum_{k not in S} g_k h_k) / (1 - r).

        The layers agree exactly only when r = 0; where the removed particles' gates
        are near zero for an input (r << 1), y_pruned = y + O(r) and the outputs match
        closely.  Elsewhere they differ, which is why a short fine-tune after pruning
        helps.
        """
        tau = self.tau if tau is None else tau
        _check_tau(tau, "ParticleLayer.prune")
        fraction = self.active_fraction.tolist()
        kept = [k for k, f in enumerate(fraction) if f > tau]
        if not kept:
            mean = self.mean_gate.tolist()
            kept = [max(range(self.num_particles), key=lambda k: (fraction[k], mean[k]))]
        activation = copy.deepcopy(self.activation) if isinstance(self.activation, Module) \
            else self.activation
        new = ParticleLayer(self.in_features, self.out_features, len(kept), activation,
                            self.bias is not None, self.tau, device=self.weight.device,
                            dtype=self.weight.dtype)
        index = tensor(kept, dtype=_dt.int64, device=self.weight.device)
        with no_grad():
            new.weight.copy_(self.weight.index_select(0, index))
            if self.bias is not None:
                new.bias.copy_(self.bias.index_select(0, index))
            new.gate.copy_(self.gate.index_select(1, index))
        new.train(self.training)
        removed = tuple(sorted(set(range(self.num_particles)) - set(kept)))
        new.pruning = ParticlePruning(tuple(kept), removed, self.num_parameters(),
                                      new.num_parameters())
        return new

    def extra_repr(self):
        act = repr(self.activation) if isinstance(self.activation, (str, type(None))) else \
            getattr(self.activation, "__name__", type(self.activation).__name__)
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"num_particles={self.num_particles}, activation={act}, "
                f"bias={self.bias is not None}, tau={self.tau}")
