"""`genesis.cpu`: the host memory of the "cpu" device.

Large CPU arrays (from 16384 elements) come from a cache of memory blocks: a block
that an array no longer needs is kept, already mapped, for the next array of its
size class, so that a training step does not page-fault its way through fresh
memory on every step.  The cache keeps at most `limit` bytes of free blocks (1 GiB
unless set) and returns memory to the system on `empty_cache()`.
"""
from . import _C

__all__ = ["memory_stats", "empty_cache", "set_cache_limit"]


def memory_stats():
    """A dict of the block cache's counters: cached_bytes (free blocks kept),
    live_bytes (blocks in use by arrays), limit, hits and misses (allocations served
    from the cache / from the system)."""
    return _C.host_cache_stats()


def empty_cache():
    """Return every free cached block to the system (arrays in use keep theirs)."""
    _C.host_cache_empty()


def set_cache_limit(nbytes):
    """Keep at most `nbytes` bytes of free blocks (0 disables caching); blocks over
    the new limit are freed at once."""
    if not isinstance(nbytes, int) or isinstance(nbytes, bool):
        raise TypeError(f"set_cache_limit: nbytes must be an int, got {type(nbytes).__name__}")
    _C.host_cache_set_limit(nbytes)
