"""Whether operations record the graph: `no_grad`, `enable_grad`, `set_grad_enabled`."""
import functools

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]


class _State:
    __slots__ = ("enabled",)

    def __init__(self):
        self.enabled = True


STATE = _State()


def is_grad_enabled():
    return STATE.enabled


class _GradMode:
    """Base of the grad-mode switches: a context manager and a function decorator."""

    _target = True

    def __new__(cls, *args):
        # bare decorator form: @no_grad (without parentheses)
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]):
            return object.__new__(cls)(args[0])
        return object.__new__(cls)

    def __enter__(self):
        self._prev = STATE.enabled
        STATE.enabled = self._target

    def __exit__(self, *exc):
        STATE.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Disable graph recording: `with genesis.no_grad(): ...` or `@genesis.no_grad()`."""

    _target = False


class enable_grad(_GradMode):
    """Re-enable graph recording inside a `no_grad` region."""

    _target = True


class set_grad_enabled(_GradMode):
    """`set_grad_enabled(False)` switches recording off now, or for a `with` block."""

    def __init__(self, mode):
        self._prev = STATE.enabled
        self._target = bool(mode)
        STATE.enabled = self._target

    def __enter__(self):
        pass

    def __call__(self, fn):
        STATE.enabled = self._prev  # used as a decorator: do not switch at definition time
        mode = self._target

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper
