"""Errors are raised with the right type and a message that says what went wrong
(the op, the shapes or dtypes involved), and leave the operands untouched."""
import numpy as np
import pytest

import genesis as G


# ----------------------------------------------------------------- shapes
@pytest.mark.parametrize("op,name", [
    (lambda a, b: a + b, "add"), (lambda a, b: a - b, "sub"), (lambda a, b: a * b, "mul"),
    (lambda a, b: a / b, "div"), (lambda a, b: G.maximum(a, b), "maximum"),
    (lambda a, b: a < b, "lt"),
])
def test_broadcast_mismatch_names_op_and_shapes(op, name):
    with pytest.raises(RuntimeError) as e:
        op(G.ones(2, 3), G.ones(4, 3))
    msg = str(e.value)
    assert name in msg and "(2, 3)" in msg and "(4, 3)" in msg, msg


def test_broadcast_mismatch_3d():
    with pytest.raises(RuntimeError, match=r"\(5, 1, 3\).*\(2, 4\)"):
        G.ones(5, 1, 3) + G.ones(2, 4)


def test_matmul_inner_dimension_mismatch():
    with pytest.raises(RuntimeError) as e:
        G.ones(2, 3) @ G.ones(4, 3)
    msg = str(e.value)
    assert "matmul" in msg and "2x3" in msg and "4x3" in msg, msg
    with pytest.raises(RuntimeError, match="matmul"):
        G.ones(3) @ G.ones(4)
    with pytest.raises(RuntimeError, match="matmul"):
        G.ones(2, 3, 4) @ G.ones(5, 2)
    with pytest.raises(RuntimeError, match="matmul"):
        G.ones(2, 2, 3) @ G.ones(3, 3, 4)  # batch dims 2 vs 3
    with pytest.raises(RuntimeError, match="1D"):
        G.ones(()) @ G.ones(3)


def test_matmul_of_integer_tensors_is_refused_clearly():
    with pytest.raises(RuntimeError, match="int64"):
        G.tensor([[1, 2]]) @ G.tensor([[1], [2]])


def test_inplace_broadcast_to_larger_shape():
    x = G.ones(3)
    with pytest.raises(RuntimeError, match=r"add_.*\[3\].*\[2, 3\]"):
        x.add_(G.ones(2, 3))
    np.testing.assert_array_equal(x.numpy(), np.ones(3))


def test_reshape_view_expand_errors():
    with pytest.raises(RuntimeError, match=r"\[2, 2\].*3"):
        G.ones(3).reshape(2, 2)
    with pytest.raises(RuntimeError, match="reshape"):
        G.ones(2, 3).T.view(6)
    with pytest.raises(RuntimeError, match="expand"):
        G.ones(2, 3).expand(3, 3)
    with pytest.raises(RuntimeError, match="permute"):
        G.ones(2, 3).permute(0, 0)


def test_dim_out_of_range_is_index_error():
    with pytest.raises(IndexError, match="dimension out of range"):
        G.ones(2, 3).transpose(0, 3)
    with pytest.raises(IndexError, match="sum"):
        G.ones(3).sum(dim=2)
    with pytest.raises(IndexError):
        G.ones(2, 3).size(2)


def test_cat_with_mismatched_shapes():
    with pytest.raises(RuntimeError, match=r"cat.*\[2, 3\].*\[2, 4\]"):
        G.cat([G.ones(2, 3), G.ones(2, 4)])
    with pytest.raises(RuntimeError, match="cat"):
        G.cat([G.ones(2, 3), G.ones(3)])
    with pytest.raises(RuntimeError, match="cat"):
        G.cat([])
    with pytest.raises(RuntimeError, match="stack"):
        G.stack([G.ones(2, 3), G.ones(2, 4)])
    # the non-concatenated dims may differ only in dim `dim`
    assert G.cat([G.ones(2, 3), G.ones(2, 4)], dim=1).shape == (2, 7)


# ----------------------------------------------------------------- autograd
def test_requires_grad_on_integer_tensor():
    with pytest.raises(RuntimeError, match="floating point"):
        G.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        G.arange(3).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        G.ones(2, dtype=G.int32, requires_grad=True)


def test_backward_on_non_scalar():
    y = G.ones(2, 3, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()


def test_backward_gradient_shape_mismatch():
    y = G.ones(3, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"[Mm]ismatch in shape.*\[2\].*\[3\]"):
        y.backward(G.ones(2))


def test_backward_through_freed_graph():
    x = G.ones(3, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time") as e:
        y.backward()
    assert "retain_graph=True" in str(e.value)


def test_version_counter_error_names_shape_and_versions():
    x = G.ones(2, 3, requires_grad=True)
    y = x.exp()
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as e:
        y.sum().backward()
    msg = str(e.value)
    assert "(2, 3)" in msg and "version 1" in msg and "version 0" in msg, msg


def test_inplace_on_leaf_requiring_grad():
    x = G.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1.0)


def test_numpy_on_tensor_requiring_grad():
    with pytest.raises(RuntimeError, match=r"detach\(\)"):
        G.ones(2, requires_grad=True).numpy()


def test_requires_grad_false_on_non_leaf():
    y = G.ones(2, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


# ----------------------------------------------------------------- indexing
def test_index_out_of_range():
    x = G.ones(3, 4)
    with pytest.raises(IndexError, match=r"index 5 is out of bounds for dimension 0 with size 3"):
        x[5]
    with pytest.raises(IndexError, match="out of bounds"):
        x[-4]
    with pytest.raises(IndexError, match="out of bounds"):
        x[0, 4]
    with pytest.raises(IndexError, match="out of bounds"):
        x[G.tensor([0, 3])]
    with pytest.raises(IndexError, match="out of bounds"):
        x[:, G.tensor([-5])]
    with pytest.raises(IndexError, match="out of bounds"):
        x[G.tensor([0, 5])] = 1.0
    np.testing.assert_array_equal(x.numpy(), np.ones((3, 4)))


def test_gather_out_of_range_index():
    x = G.ones(2, 3)
    with pytest.raises(IndexError, match=r"gather.*3.*size 3"):
        G.gather(x, 1, G.tensor([[0, 3], [1, 1]]))
    with pytest.raises(IndexError, match="gather"):
        G.gather(x, 1, G.tensor([[0, -1], [1, 1]]))
    with pytest.raises(IndexError, match="gather"):
        G.gather(x, 0, G.tensor([[2, 0, 0]]))


def test_gather_wrong_dtype_and_rank():
    x = G.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"gather.*int64.*float32"):
        G.gather(x, 1, G.tensor([[0.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(RuntimeError, match="gather"):
        G.gather(x, 1, G.tensor([0, 1]))


def test_wrong_dtype_index():
    x = G.ones(3)
    with pytest.raises(IndexError, match="long, int or bool"):
        x[G.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match="float"):
        x[1.0]
    with pytest.raises(IndexError, match="float"):
        x[1.0] = 2.0
    with pytest.raises(IndexError, match="mask"):
        x[G.tensor([True, False])]


def test_too_many_indices():
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 1"):
        G.ones(3)[0, 0]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        G.ones(2, 3)[0, 1, 2]
    with pytest.raises(IndexError, match="too many indices"):
        G.ones(2, 3)[0, 1, 2] = 1.0
    with pytest.raises(IndexError, match="too many indices"):
        G.tensor(1.0)[0]


def test_setitem_value_shape_mismatch():
    x = G.zeros(3)
    with pytest.raises(RuntimeError, match=r"shape mismatch.*\[3\].*\[2\]"):
        x[0:2] = G.ones(3)
    np.testing.assert_array_equal(x.numpy(), np.zeros(3))


# ----------------------------------------------------------------- dtypes and values
@pytest.mark.parametrize("np_dtype", [np.float16, np.uint8, np.uint16, np.int8, np.complex64])
def test_unsupported_numpy_dtype_in_from_numpy(np_dtype):
    with pytest.raises(TypeError, match="genesis does not support numpy dtype"):
        G.from_numpy(np.zeros(2, dtype=np_dtype))


def test_from_numpy_requires_an_array():
    with pytest.raises(TypeError, match="from_numpy"):
        G.from_numpy([1.0, 2.0])


def test_operand_of_wrong_type():
    with pytest.raises(TypeError, match="add"):
        G.ones(3) + "a"
    with pytest.raises(TypeError, match="mul"):
        G.ones(3) * None
    with pytest.raises(TypeError, match="where"):
        G.where(G.ones(2), G.ones(2), G.ones(2))


def test_int_inplace_with_float_result():
    x = G.tensor([1, 2])
    with pytest.raises(RuntimeError, match=r"int64"):
        x.mul_(1.5)
    np.testing.assert_array_equal(x.numpy(), [1, 2])


def test_creation_errors():
    with pytest.raises(RuntimeError, match="negative dimension"):
        G.zeros(-1)
    with pytest.raises(RuntimeError, match="unknown device 'tpu'"):
        G.ones(3, device="tpu")
    with pytest.raises(RuntimeError, match="step"):
        G.arange(0, 5, 0)
    with pytest.raises((TypeError, ValueError)):
        G.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match="floating"):
        G.rand(2, dtype=G.int64)


def test_item_and_bool_of_multi_element_tensor():
    with pytest.raises(RuntimeError, match="2 elements"):
        G.ones(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        if G.ones(2):
            pass
