"""numpy's broadcasting rule on shapes, shared by the op modules and the backends."""


def broadcast_shape(op, *shapes):
    """numpy's broadcasting rule, with an error naming the op and the shapes."""
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for s in shapes:
        for i, size in enumerate(s, ndim - len(s)):
            if size != 1:
                if out[i] != 1 and out[i] != size:
                    listed = " and ".join(str(tuple(x)) for x in shapes)
                    raise RuntimeError(f"{op}: shapes {listed} cannot be broadcast together "
                                       f"(size {out[i]} vs {size} at dimension {i - ndim})")
                out[i] = size
    return tuple(out)
