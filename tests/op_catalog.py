"""The op catalog: every public op with its input domain and numpy reference.

Each `Op` draws its inputs (numpy float64 arrays, index arrays, keyword
arguments) from hypothesis, applies the genesis function, and names the numpy
reference.  tests/test_ops.py derives from it: forward against numpy in float32
and float64, gradcheck, gradgradcheck, non-contiguous inputs, and odd shapes
(0-d, size 0, size 1) which the shape strategies include.
"""
import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

import genesis as G


@dataclass
class Op:
    name: str
    fn: callable          # genesis: fn(*tensors, **kwargs)
    ref: callable         # numpy:   ref(*arrays, **kwargs), computed in float64
    draw: callable        # draw(data, small) -> (list of arrays, kwargs)
    grad: bool = True     # gradcheck applies
    gradgrad: bool = True  # double backward supported
    tol32: float = 1e-5
    output: int = None    # index into a tuple result
    int_ok: bool = False  # also run forward on int64 inputs
    tags: tuple = field(default_factory=tuple)


# ------------------------------------------------------------------ strategies
def _shape(data, small, min_dims=0, max_dims=3, min_side=0):
    hi = 3 if small else 5
    return tuple(data.draw(st.lists(st.integers(min_side, hi), min_size=min_dims,
                                    max_size=max_dims), label="shape"))


def _rng(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))


def _values(rng, shape, lo, hi, avoid=(), margin=0.1):
    x = rng.uniform(lo, hi, shape)
    for p in avoid:  # push values out of (p - margin, p + margin): kinks and poles
        near = np.abs(x - p) < margin
        x = np.where(near, p + np.where(x >= p, margin, -margin) * 1.5, x)
    return x


def _broadcast_partner(data, shape):
    """A shape that broadcasts with `shape`: some dims set to 1, some leading ones dropped."""
    drop = data.draw(st.integers(0, len(shape)), label="drop")
    out = list(shape[drop:])
    for i in range(len(out)):
        if data.draw(st.booleans(), label="one"):
            out[i] = 1
    return tuple(out)


def unary(lo=-2.0, hi=2.0, avoid=(), min_dims=0):
    def draw(data, small):
        rng = _rng(data)
        return [_values(rng, _shape(data, small, min_dims), lo, hi, avoid)], {}
    return draw


def binary(lo=-2.0, hi=2.0, lo_b=None, hi_b=None, avoid_b=(), separate=False):
    def draw(data, small):
        rng = _rng(data)
        sa = _shape(data, small)
        sb = _broadcast_partner(data, sa)
        if data.draw(st.booleans(), label="swap"):
            sa, sb = sb, sa
        a = _values(rng, sa, lo, hi)
        b = _values(rng, sb, lo if lo_b is None else lo_b, hi if hi_b is None else hi_b, avoid_b)
        if separate:  # keep a and b apart so max/min/comparisons have no ties
            full = np.broadcast_shapes(sa, sb)
            b = np.broadcast_to(b, full).copy() if b.shape != full else b
            a = np.where(np.abs(a - b) < 0.2, b + 0.5, a)
        return [a, b], {}
    return draw


def reduction(lo=-2.0, hi=2.0, single_dim=False, distinct=False, min_side=0, min_dims=0):
    def draw(data, small):
        rng = _rng(data)
        shape = _shape(data, small, min_dims=max(min_dims, 1 if single_dim else 0),
                       min_side=min_side)
        x = _values(rng, shape, lo, hi)
        if distinct and x.size:
            x = (rng.permutation(x.size).reshape(shape) * 0.37 + 0.1 * x / (abs(x).max() + 1))
        nd = len(shape)
        if single_dim:
            dim = data.draw(st.integers(-nd, nd - 1), label="dim")
        else:
            dim = data.draw(st.one_of(st.none(), st.integers(-max(nd, 1), max(nd, 1) - 1)
                                      if nd else st.none(),
                                      st.sets(st.integers(0, max(nd - 1, 0)), max_size=nd)
                                      .map(tuple) if nd else st.none()), label="dim")
        keepdim = data.draw(st.booleans(), label="keepdim")
        return [x], {"dim": dim, "keepdim": keepdim}
    return draw


def _np_dims(dim, ndim):
    if dim is None or dim == ():  # PyTorch: an empty dim list reduces every dim
        return tuple(range(ndim))
    return (dim,) if isinstance(dim, int) else tuple(dim)


def np_reduce(fn):
    def ref(x, dim=None, keepdim=False):
        return fn(x, axis=_np_dims(dim, x.ndim), keepdims=keepdim)
    return ref


# ------------------------------------------------------------------ references
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x, dim):
    if x.size == 0:
        return x.copy()
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(x * beta > threshold, x, np.log1p(np.exp(beta * x)) / beta)


def _var(x, dim=None, keepdim=False, correction=1):
    d = _np_dims(dim, x.ndim)
    n = int(np.prod([x.shape[i] for i in d])) if d else 1
    m = x.mean(axis=d, keepdims=True)
    return ((x - m) ** 2).sum(axis=d, keepdims=keepdim) / (n - correction)


def _logsumexp(x, dim=None, keepdim=False):
    d = _np_dims(dim, x.ndim)
    m = x.max(axis=d, keepdims=True)
    out = np.log(np.exp(x - m).sum(axis=d, keepdims=True)) + m
    return out if keepdim else np.squeeze(out, d)


def _py_mod(a, b):
    return a - np.floor(a / b) * b


OPS = []


def op(*args, **kwargs):
    OPS.append(Op(*args, **kwargs))


# ------------------------------------------------------------------ elementwise unary
op("neg", G.neg, np.negative, unary(), int_ok=True)
op("exp", G.exp, np.exp, unary())
op("log", G.log, np.log, unary(0.2, 3.0))
op("log1p", G.log1p, np.log1p, unary(-0.5, 2.0))
op("expm1", G.expm1, np.expm1, unary())
op("sqrt", G.sqrt, np.sqrt, unary(0.2, 3.0))
op("rsqrt", G.rsqrt, lambda x: 1 / np.sqrt(x), unary(0.2, 3.0))
op("abs", G.abs, np.abs, unary(avoid=(0,)), int_ok=True)
op("sign", G.sign, np.sign, unary(avoid=(0,)), int_ok=True)
op("reciprocal", G.reciprocal, np.reciprocal, unary(avoid=(0,), lo=-2, hi=2))
op("sin", G.sin, np.sin, unary(-4, 4))
op("cos", G.cos, np.cos, unary(-4, 4))
op("tanh", G.tanh, np.tanh, unary(-3, 3))
op("sigmoid", G.sigmoid, _sigmoid, unary(-5, 5))
op("relu", G.relu, lambda x: np.maximum(x, 0), unary(avoid=(0,)))
op("leaky_relu", lambda x: G.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x),
   unary(avoid=(0,)))
op("elu", lambda x: G.elu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)),
   unary(avoid=(0,)))
op("gelu", G.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), unary(-3, 3))
op("gelu_tanh", lambda x: G.gelu(x, approximate="tanh"), _gelu_tanh, unary(-3, 3))
op("silu", G.silu, lambda x: x * _sigmoid(x), unary(-4, 4))
op("softplus", G.softplus, _softplus, unary(-4, 4))
op("softplus_beta", lambda x: G.softplus(x, beta=2.0, threshold=3.0),
   lambda x: _softplus(x, 2.0, 3.0), unary(-3, 3, avoid=(1.5,)))
op("erf", G.erf, _erf, unary(-2.5, 2.5))
op("square", G.square, np.square, unary(), int_ok=True)
op("clamp", lambda x: G.clamp(x, -0.5, 0.8), lambda x: np.clip(x, -0.5, 0.8),
   unary(avoid=(-0.5, 0.8)))
op("clamp_min", lambda x: G.clamp(x, min=0.3), lambda x: np.maximum(x, 0.3), unary(avoid=(0.3,)))
op("floor", G.floor, np.floor, unary(-3, 3, avoid=(-2, -1, 0, 1, 2)))
op("ceil", G.ceil, np.ceil, unary(-3, 3, avoid=(-2, -1, 0, 1, 2)))
op("round", G.round, np.round, unary(-3, 3, avoid=(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5)))
op("trunc", G.trunc, np.trunc, unary(-3, 3, avoid=(-2, -1, 0, 1, 2)))
op("pow_scalar", lambda x: x ** 3, lambda x: x ** 3, unary())
op("pow_frac", lambda x: x ** 0.5, np.sqrt, unary(0.2, 3.0))
op("rpow", lambda x: 2.0 ** x, lambda x: 2.0 ** x, unary())
op("rsub", lambda x: 3 - x, lambda x: 3 - x, unary(), int_ok=True)
op("rdiv", lambda x: 3 / x, lambda x: 3 / x, unary(avoid=(0,)))
op("scalar_mul", lambda x: x * 2.5, lambda x: x * 2.5, unary())

# ------------------------------------------------------------------ elementwise binary
op("add", G.add, np.add, binary(), int_ok=True)
op("sub", G.sub, np.subtract, binary(), int_ok=True)
op("mul", G.mul, np.multiply, binary(), int_ok=True)
op("div", G.div, np.divide, binary(avoid_b=(0,)))
op("pow", G.pow, np.power, binary(0.3, 2.0, -2.0, 2.0))
op("maximum", G.maximum, np.maximum, binary(separate=True), int_ok=True)
op("minimum", G.minimum, np.minimum, binary(separate=True), int_ok=True)
op("remainder", G.remainder, _py_mod, binary(-3, 3, 0.7, 1.3), grad=False, int_ok=False)
op("floor_divide", G.floor_divide, lambda a, b: np.floor(a / b), binary(-3, 3, 0.7, 1.3),
   grad=False)
for _name, _np in (("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
                   ("gt", np.greater), ("ge", np.greater_equal)):
    op(_name, getattr(G, _name), _np, binary(separate=True), grad=False, int_ok=True)


def _where_draw(data, small):
    (a, b), _ = binary()(data, small)
    rng = _rng(data)
    cond = rng.random(np.broadcast_shapes(a.shape, b.shape)) > 0.5
    return [cond, a, b], {}


op("where", G.where, np.where, _where_draw)

# ------------------------------------------------------------------ reductions
op("sum", G.sum, np_reduce(np.sum), reduction(), int_ok=True)
op("mean", G.mean, np_reduce(np.mean), reduction(min_side=1))
op("prod", G.prod, np_reduce(np.prod), reduction(0.5, 1.5))
op("prod_with_zero", lambda x, dim, keepdim: G.prod(x * (x > 0.5), dim, keepdim),
   lambda x, dim, keepdim: np_reduce(np.prod)(x * (x > 0.5), dim, keepdim),
   reduction(0, 1.5), grad=False)
op("all", lambda x, dim, keepdim: G.all(x > 0, dim, keepdim),
   lambda x, dim, keepdim: np.all(x > 0, axis=_np_dims(dim, x.ndim), keepdims=keepdim),
   reduction(), grad=False)
op("any", lambda x, dim, keepdim: (x > 1).any(dim, keepdim),
   lambda x, dim, keepdim: np.any(x > 1, axis=_np_dims(dim, x.ndim), keepdims=keepdim),
   reduction(), grad=False)
op("amax", G.amax, np_reduce(np.amax), reduction(distinct=True, min_side=1), int_ok=True)
op("amin", G.amin, np_reduce(np.amin), reduction(distinct=True, min_side=1), int_ok=True)
op("max_dim", lambda x, dim, keepdim: G.max(x, dim, keepdim).values,
   lambda x, dim, keepdim: np.max(x, axis=dim, keepdims=keepdim),
   reduction(single_dim=True, distinct=True, min_side=1), int_ok=True)
op("min_dim", lambda x, dim, keepdim: G.min(x, dim, keepdim).values,
   lambda x, dim, keepdim: np.min(x, axis=dim, keepdims=keepdim),
   reduction(single_dim=True, distinct=True, min_side=1), int_ok=True)
op("argmax", lambda x, dim, keepdim: G.argmax(x, dim, keepdim),
   lambda x, dim, keepdim: np.argmax(x, axis=dim, keepdims=keepdim),
   reduction(single_dim=True, distinct=True, min_side=1), grad=False, int_ok=True)
op("argmin", lambda x, dim, keepdim: G.argmin(x, dim, keepdim),
   lambda x, dim, keepdim: np.argmin(x, axis=dim, keepdims=keepdim),
   reduction(single_dim=True, distinct=True, min_side=1), grad=False)
op("var", lambda x, dim, keepdim: G.var(x, dim, keepdim=keepdim),
   lambda x, dim, keepdim: _var(x, dim, keepdim), reduction(min_side=2, min_dims=1))
op("var_biased", lambda x, dim, keepdim: G.var(x, dim, keepdim=keepdim, correction=0),
   lambda x, dim, keepdim: _var(x, dim, keepdim, 0), reduction(min_side=1))
op("std", lambda x, dim, keepdim: G.std(x, dim, keepdim=keepdim),
   lambda x, dim, keepdim: np.sqrt(_var(x, dim, keepdim)),
   reduction(min_side=2, min_dims=1, distinct=True))
op("logsumexp", lambda x, dim, keepdim: G.logsumexp(x, dim, keepdim), _logsumexp,
   reduction(min_side=1))
op("norm", lambda x, dim, keepdim: G.norm(x, dim=dim, keepdim=keepdim),
   lambda x, dim, keepdim: np.sqrt((x * x).sum(axis=_np_dims(dim, x.ndim), keepdims=keepdim)),
   reduction(0.2, 2.0, min_side=1))
op("cumsum", lambda x, dim, keepdim: G.cumsum(x, dim),
   lambda x, dim, keepdim: np.cumsum(x, axis=dim), reduction(single_dim=True), int_ok=True)
op("softmax", lambda x, dim, keepdim: G.softmax(x, dim),
   lambda x, dim, keepdim: _softmax(x, dim), reduction(-4, 4, single_dim=True))
op("log_softmax", lambda x, dim, keepdim: G.log_softmax(x, dim),
   lambda x, dim, keepdim: np.log(_softmax(x, dim)), reduction(-4, 4, single_dim=True))


# ------------------------------------------------------------------ shape ops
def _with_shape(fn_args, min_dims=0, min_side=0, lo=-2.0, hi=2.0):
    """Draw x, then the op's arguments from x's shape with fn_args(data, shape)."""
    def draw(data, small):
        rng = _rng(data)
        shape = _shape(data, small, min_dims=min_dims, min_side=min_side)
        return [_values(rng, shape, lo, hi)], fn_args(data, shape)
    return draw


def _dim_of(data, shape, extra=0):
    n = len(shape) + extra
    return data.draw(st.integers(-n, n - 1), label="dim")


def _perm(data, shape):
    return {"dims": tuple(data.draw(st.permutations(range(len(shape))), label="perm"))}


op("reshape_flat", lambda x: x.reshape(-1), lambda x: x.reshape(-1), unary())
op("reshape_T", lambda x: x.T.reshape(-1), lambda x: x.T.reshape(-1), unary(), int_ok=True)
op("flatten", lambda x, start: G.flatten(x, start), lambda x, start: x.reshape(
    x.shape[:start] + (int(np.prod(x.shape[start:])),)) if x.ndim else x.reshape(1),
   _with_shape(lambda d, s: {"start": d.draw(st.integers(0, max(len(s) - 1, 0)))}))
op("squeeze", G.squeeze, np.squeeze, unary())
op("unsqueeze", lambda x, dim: G.unsqueeze(x, dim), lambda x, dim: np.expand_dims(x, dim),
   _with_shape(lambda d, s: {"dim": _dim_of(d, s, 1)}))
op("transpose", lambda x: G.transpose(x, 0, -1), lambda x: np.swapaxes(x, 0, -1),
   unary(min_dims=1), int_ok=True)
op("permute", lambda x, dims: x.permute(dims), lambda x, dims: np.transpose(x, dims),
   _with_shape(_perm))
op("mT", lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), unary(min_dims=2))
op("expand", lambda x: x.expand(2, *x.shape), lambda x: np.broadcast_to(x, (2,) + x.shape),
   unary())
op("broadcast_to", lambda x: G.broadcast_to(x[..., :1], x.shape[:-1] + (3,)),
   lambda x: np.broadcast_to(x[..., :1], x.shape[:-1] + (3,)),
   _with_shape(lambda d, s: {}, min_dims=1, min_side=1))
op("contiguous_T", lambda x: x.T.contiguous(), lambda x: x.T.copy(), unary())
op("flip", lambda x, dim: G.flip(x, dim), lambda x, dim: np.flip(x, dim),
   _with_shape(lambda d, s: {"dim": _dim_of(d, s)}, min_dims=1), int_ok=True)
op("repeat", lambda x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)),
   _with_shape(lambda d, s: {}, min_dims=0), tags=("max3",))
op("pad", lambda x: G.pad(x, (1, 2), value=0.5),
   lambda x: np.pad(x, [(0, 0)] * (x.ndim - 1) + [(1, 2)], constant_values=0.5),
   unary(min_dims=1))
op("pad2d", lambda x: G.pad(x, (1, 0, 0, 2)),
   lambda x: np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, 2), (1, 0)]), unary(min_dims=2))


def _two_same(data, small, axis_varies=True):
    rng = _rng(data)
    shape = _shape(data, small, min_dims=1)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    other = list(shape)
    if axis_varies:
        other[dim] = data.draw(st.integers(0, 3), label="other")
    return [_values(rng, shape, -2, 2), _values(rng, tuple(other), -2, 2)], {"dim": dim}


op("cat", lambda a, b, dim: G.cat([a, b], dim), lambda a, b, dim: np.concatenate([a, b], dim),
   _two_same, int_ok=True)
op("stack", lambda a, b, dim: G.stack([a, b], dim), lambda a, b, dim: np.stack([a, b], dim),
   lambda data, small: _two_same(data, small, axis_varies=False))
op("split", lambda x, dim: G.split(x, 2, dim)[-1],
   lambda x, dim: np.array_split(x, range(2, x.shape[dim], 2), axis=dim)[-1],
   _with_shape(lambda d, s: {"dim": _dim_of(d, s)}, min_dims=1, min_side=1))
op("chunk", lambda x, dim: G.chunk(x, 2, dim)[0],
   lambda x, dim: np.take(x, range(-(-x.shape[dim] // 2)), axis=dim),
   _with_shape(lambda d, s: {"dim": _dim_of(d, s)}, min_dims=1, min_side=1))


# ------------------------------------------------------------------ indexing
def _index_draw(kind):
    def draw(data, small):
        rng = _rng(data)
        shape = _shape(data, small, min_dims=2, min_side=1)
        x = _values(rng, shape, -2, 2)
        if kind == "basic":
            key = (slice(None, None, -1), slice(0, None, 2))
        elif kind == "int":
            key = (min(1, shape[0] - 1),)
        elif kind == "list":
            key = (slice(None), list(rng.integers(-shape[1], shape[1], 4)))
        elif kind == "pair":
            key = (rng.integers(0, shape[0], 3), rng.integers(0, shape[1], 3))
        elif kind == "mask":
            key = (rng.random(shape[:2]) > 0.4,)
        elif kind == "ellipsis_none":
            key = (Ellipsis, None, 0)
        else:  # non-adjacent advanced indices go first (numpy's rule)
            if len(shape) < 3:
                x = x[..., None]
            key = (rng.integers(0, x.shape[0], 2), slice(None), rng.integers(0, x.shape[2], 2))
        return [x], {"key": key}
    return draw


def _np_key(key):
    return tuple(k for k in key)


def _g_key(key):
    return tuple(G.tensor(k) if isinstance(k, np.ndarray) else k for k in key)


for _kind in ("basic", "int", "list", "pair", "mask", "ellipsis_none", "split_adv"):
    op(f"getitem_{_kind}", lambda x, key: x[_g_key(key)], lambda x, key: x[_np_key(key)],
       _index_draw(_kind), int_ok=True)


def _setitem(x, v, key):
    y = x * 1.0
    y[_g_key(key)] = v
    return y


def _setitem_ref(x, v, key):
    y = x.copy()
    y[_np_key(key)] = v
    return y


def _setitem_draw(kind):
    def draw(data, small):
        (x,), kw = _index_draw(kind)(data, small)
        target = x[_np_key(kw["key"])]
        rng = _rng(data)
        # distinct positions only: with repeats the winner of x[idx] = v is unspecified
        if kind == "pair":
            k0, k1 = kw["key"]
            flat = np.ravel_multi_index((k0, k1), x.shape[:2])
            _, first = np.unique(flat, return_index=True)
            kw["key"] = (k0[np.sort(first)], k1[np.sort(first)])
            target = x[_np_key(kw["key"])]
        return [x, _values(rng, target.shape[-1:] if target.ndim else (), -2, 2)], kw
    return draw


for _kind in ("basic", "int", "pair", "mask"):
    op(f"setitem_{_kind}", _setitem, _setitem_ref, _setitem_draw(_kind))


def _gather_draw(data, small):
    rng = _rng(data)
    shape = _shape(data, small, min_dims=1, min_side=1)
    dim = data.draw(st.integers(0, len(shape) - 1), label="dim")
    ishape = tuple(data.draw(st.integers(0, s), label="ishape") for s in shape)
    ishape = ishape[:dim] + (data.draw(st.integers(0, 4)),) + ishape[dim + 1:]
    index = rng.integers(0, shape[dim], ishape)
    return [_values(rng, shape, -2, 2), index], {"dim": dim}


op("gather", lambda x, i, dim: G.gather(x, dim, i),
   lambda x, i, dim: np.take_along_axis(x[tuple(slice(0, s) if d != dim else slice(None)
                                                for d, s in enumerate(i.shape))], i, dim),
   _gather_draw, int_ok=True)


def _scatter_ref(x, i, src, dim):
    out = x.copy()
    for idx in np.ndindex(*i.shape):
        tgt = list(idx)
        tgt[dim] = i[idx]
        out[tuple(tgt)] += src[idx]
    return out


def _scatter_draw(data, small):
    (x, index), kw = _gather_draw(data, small)
    return [x, index, _values(_rng(data), index.shape, -2, 2)], kw


op("scatter_add", lambda x, i, s, dim: G.scatter_add(x, dim, i, s), _scatter_ref, _scatter_draw)
op("index_select", lambda x, i, dim: G.index_select(x, dim, i.reshape(-1)),
   lambda x, i, dim: np.take(x, i.reshape(-1), axis=dim), _gather_draw)
op("masked_fill", lambda x: G.masked_fill(x, x > 0.5, -1.0),
   lambda x: np.where(x > 0.5, -1.0, x), unary(avoid=(0.5,)))
op("sort", lambda x, dim: G.sort(x, dim)[0], lambda x, dim: np.sort(x, axis=dim),
   _with_shape(lambda d, s: {"dim": _dim_of(d, s)}, min_dims=1), int_ok=True)
op("sort_desc", lambda x, dim: G.sort(x, dim, descending=True)[0],
   lambda x, dim: -np.sort(-x, axis=dim),
   _with_shape(lambda d, s: {"dim": _dim_of(d, s)}, min_dims=1))
op("topk", lambda x: G.topk(x, 2, -1)[0], lambda x: -np.sort(-x, axis=-1)[..., :2],
   _with_shape(lambda d, s: {}, min_dims=1, min_side=2))
op("topk_smallest", lambda x: G.topk(x, 1, 0, largest=False)[0],
   lambda x: np.sort(x, axis=0)[:1], _with_shape(lambda d, s: {}, min_dims=1, min_side=1))


# ------------------------------------------------------------------ linear algebra
def _matmul_draw(data, small):
    rng = _rng(data)
    hi = 3 if small else 6
    m, k, n = (data.draw(st.integers(0 if not small else 1, hi)) for _ in range(3))
    kind = data.draw(st.sampled_from(["mm", "vec_mat", "mat_vec", "dot", "batch", "bcast"]))
    batch = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    sa = {"mm": (m, k), "vec_mat": (k,), "mat_vec": (m, k), "dot": (k,), "batch": batch + (m, k),
          "bcast": (m, k)}[kind]
    sb = {"mm": (k, n), "vec_mat": (k, n), "mat_vec": (k,), "dot": (k,), "batch": batch + (k, n),
          "bcast": batch + (k, n)}[kind]
    return [_values(rng, sa, -2, 2), _values(rng, sb, -2, 2)], {}


op("matmul", G.matmul, np.matmul, _matmul_draw)
op("matmul_T", lambda a, b: G.matmul(b.mT, a.mT), lambda a, b: np.matmul(np.swapaxes(b, -1, -2),
                                                                          np.swapaxes(a, -1, -2)),
   lambda data, small: _bcast_free(_matmul_draw(data, small)))


def _bcast_free(drawn):
    """Only 2-D+ operands (mT needs two dims)."""
    (a, b), kw = drawn
    a = a if a.ndim >= 2 else a.reshape(1, -1)
    b = b if b.ndim >= 2 else b.reshape(-1, 1)
    if a.shape[-1] != b.shape[-2]:
        b = np.ones(a.shape[-1:] + b.shape[-1:])
    return [a, b], kw


def _pair_1d(data, small):
    rng = _rng(data)
    n = data.draw(st.integers(0, 4))
    m = data.draw(st.integers(0, 4))
    return [_values(rng, (n,), -2, 2), _values(rng, (m,), -2, 2)], {}


op("outer", G.outer, np.outer, _pair_1d)
op("bmm", G.bmm, np.matmul, lambda data, small: _bmm_draw(data, small))


def _bmm_draw(data, small):
    rng = _rng(data)
    b, m, k, n = (data.draw(st.integers(1, 3)) for _ in range(4))
    return [_values(rng, (b, m, k), -2, 2), _values(rng, (b, k, n), -2, 2)], {}


BY_NAME = {o.name: o for o in OPS}
