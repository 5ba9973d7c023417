"""Reverse-mode engine: walks the graph from the outputs to the leaves.

The walk is iterative (a chain of any length works without recursion): a
depth-first pass orders the nodes topologically, then each node runs once,
after every gradient flowing into it has been summed.
"""
from .function import AccumulateGrad
from .grad_mode import STATE

_Tensor = None  # bound by genesis.tensor


def _topological_order(roots):
    """Nodes reachable from `roots`, each before every node it feeds gradient to."""
    order, visited = [], set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack = [(root, iter(root.next_functions))]
        while stack:
            node, children = stack[-1]
            for edge in children:
                if edge is not None and id(edge[0]) not in visited:
                    visited.add(id(edge[0]))
                    stack.append((edge[0], iter(edge[0].next_functions)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _needed(order, targets):
    """Nodes from which some target node is reachable (the rest need not run)."""
    needed = set()
    for node in reversed(order):
        if id(node) in targets or any(e is not None and id(e[0]) in needed
                                      for e in node.next_functions):
            needed.add(id(node))
    return needed


def run_backward(roots, root_grads, retain_graph, create_graph, capture=None):
    """Propagate `root_grads` from the `(node, output_nr)` pairs in `roots`.

    Without `capture`, gradients accumulate into the `.grad` of leaves.  With
    `capture` (a dict mapping (node, output_nr) to a list slot), nothing is
    accumulated: the gradient reaching each captured edge is stored instead.
    """
    order = _topological_order([node for node, _ in roots])
    targets = None
    if capture is not None:
        targets = {id(node) for node, _ in capture}
        needed = _needed(order, targets)
    buffers = {}
    for (node, nr), g in zip(roots, root_grads):
        _add_to_buffer(buffers, node, nr, g)
    # ids of gradient arrays already stored in some leaf's .grad, or owned by the
    # caller (a root gradient reaching a leaf unchanged must be copied)
    handed_out = {id(g._data) for g in root_grads}

    prev = STATE.enabled
    STATE.enabled = create_graph
    try:
        for node in order:
            grads = buffers.pop(id(node), None)
            if grads is None:
                continue
            if node._hooks:
                _run_hooks(node, grads)
            if capture is not None:
                for nr, g in enumerate(grads):
                    slot = capture.get((node, nr))
                    if slot is not None:
                        slot.append(g)
                if id(node) not in needed or isinstance(node, AccumulateGrad):
                    continue
            if isinstance(node, AccumulateGrad):
                _accumulate(node, grads[0], create_graph, handed_out)
                continue
            if len(grads) > 1:  # a single output's slot is always filled
                _materialize(node, grads)
            results = type(node).backward(node, *grads)
            if not isinstance(results, tuple):
                results = (results,)
            if not retain_graph:
                node._release()
            edges = node.next_functions
            if len(results) != len(edges):
                raise RuntimeError(f"{node.name()}.backward returned {len(results)} gradients, "
                                   f"expected {len(edges)}")
            for edge, g in zip(edges, results):
                if edge is not None and g is not None:
                    _add_to_buffer(buffers, edge[0], edge[1], g)
    finally:
        STATE.enabled = prev


def _add_to_buffer(buffers, node, nr, g):
    slots = buffers.get(id(node))
    if slots is None:
        n = node._n_outputs if not isinstance(node, AccumulateGrad) else 1
        slots = buffers[id(node)] = [None] * n
    slots[nr] = g if slots[nr] is None else slots[nr] + g


def _run_hooks(node, grads):
    for nr, hooks in node._hooks.items():
        for hook in hooks:
            if grads[nr] is None:
                continue
            replaced = hook(grads[nr])
            if replaced is not None:
                grads[nr] = replaced


def _materialize(node, grads):
    """Outputs that received no gradient get zeros, except non-differentiable ones."""
    outputs_meta = None
    for i, g in enumerate(grads):
        if g is None:
            if outputs_meta is None:
                outputs_meta = node._output_meta
            meta = outputs_meta[i]
            if meta is not None:
                shape, dtype, device = meta
                grads[i] = _Tensor._zeros(shape, dtype, device)


def _accumulate(node, g, create_graph, handed_out):
    leaf = node.leaf()
    if leaf is None:
        return
    if g._data.shape != leaf._data.shape:
        raise RuntimeError(f"gradient of shape {tuple(g.shape)} does not match the leaf's "
                           f"shape {tuple(leaf.shape)}")
    if not create_graph and g._requires_grad:
        g = g.detach()
    if leaf.grad is None:
        # A gradient that is a view or already belongs to another leaf is copied,
        # so that two .grad tensors never share memory.
        if id(g._data) in handed_out or not g._owns_memory():
            g = g.clone() if create_graph else g._copy_detached()
        handed_out.add(id(g._data))
        leaf.grad = g
    elif create_graph:
        leaf.grad = leaf.grad + g
    else:
        leaf.grad._accumulate_(g)
