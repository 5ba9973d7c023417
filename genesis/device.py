"""Devices: where a tensor's storage lives and which backend computes on it."""

__all__ = ["device"]

_KNOWN = ("cpu", "cuda")


class device:
    """`genesis.device("cpu")`, `device("cuda")`, `device("cuda:0")`."""

    __slots__ = ("type", "index")

    def __new__(cls, spec="cpu", index=None):
        if isinstance(spec, device):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string such as 'cpu', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if kind not in _KNOWN:
            raise RuntimeError(f"unknown device '{spec}': expected 'cpu' or 'cuda'")
        if idx:
            index = int(idx)
        if kind == "cpu":
            index = None
        elif index is None:
            index = 0
        key = (kind, index)
        cached = _CACHE.get(key)
        if cached is None:
            cached = object.__new__(cls)
            cached.type, cached.index = kind, index
            _CACHE[key] = cached
        return cached

    def __repr__(self):
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


_CACHE = {}
cpu = device("cpu")
