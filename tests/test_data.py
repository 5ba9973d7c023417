"""genesis.data: datasets, samplers, DataLoader batching/shuffling, collation, random_split."""
import collections

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import genesis as G
from genesis.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, RandomSampler,
                          SequentialSampler, Subset, SubsetRandomSampler, TensorDataset,
                          default_collate, default_convert, random_split)


def _dataset(n, features=3):
    x = G.from_numpy(np.arange(n * features, dtype=np.float32).reshape(n, features))
    y = G.from_numpy(np.arange(n, dtype=np.int64) * 10)
    return TensorDataset(x, y)


def _order(loader):
    """The sample ids a loader over `_dataset` visits, in order (labels are 10 * id)."""
    return [int(v) // 10 for _, y in loader for v in y.tolist()]


def _slow(batch):
    return default_collate(batch)


# ---------------------------------------------------------------- datasets
def test_tensor_dataset_samples_and_validation():
    ds = _dataset(5)
    assert len(ds) == 5
    x, y = ds[2]
    np.testing.assert_array_equal(x.numpy(), [6, 7, 8])
    assert int(y) == 20
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(G.zeros(3, 2), G.zeros(4))
    with pytest.raises(ValueError, match="0-dimensional"):
        TensorDataset(G.tensor(1.0))
    with pytest.raises(TypeError, match="expected a Tensor"):
        TensorDataset(np.zeros(3))


def test_subset_and_nested_subset():
    ds = _dataset(10)
    sub = Subset(ds, [7, 2, 5, 9])
    assert len(sub) == 4
    assert int(sub[0][1]) == 70
    assert [int(s[1]) for s in sub[[1, 3]]] == [20, 90]
    inner = Subset(sub, [3, 0])
    assert [int(inner[i][1]) for i in range(2)] == [90, 70]


def test_concat_dataset_and_add():
    a, b = _dataset(3), _dataset(4)
    both = a + b
    assert isinstance(both, ConcatDataset) and len(both) == 7
    assert both.cumulative_sizes == [3, 7]
    assert [int(both[i][1]) for i in range(7)] == [0, 10, 20, 0, 10, 20, 30]
    assert int(both[-1][1]) == 30 and int(both[-7][1]) == 0
    for bad in (7, -8):
        with pytest.raises(IndexError):
            both[bad]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])


def test_random_split_counts_disjoint_and_reproducible():
    ds = _dataset(20)
    parts = random_split(ds, [5, 7, 8], generator=G.Generator().manual_seed(3))
    assert [len(p) for p in parts] == [5, 7, 8]
    ids = [i for p in parts for i in p.indices]
    assert sorted(ids) == list(range(20))  # disjoint and covering
    again = random_split(ds, [5, 7, 8], generator=G.Generator().manual_seed(3))
    assert [p.indices for p in again] == [p.indices for p in parts]
    other = random_split(ds, [5, 7, 8], generator=G.Generator().manual_seed(4))
    assert [p.indices for p in other] != [p.indices for p in parts]


def test_random_split_fractions_remainder_rule():
    ds = _dataset(10)
    # floor(10 * f) = 3, 3, 3; the remainder 1 goes to the first split (PyTorch's rule)
    assert [len(p) for p in random_split(ds, [0.33, 0.33, 0.34])] == [4, 3, 3]
    assert [len(p) for p in random_split(_dataset(11), [0.5, 0.5])] == [6, 5]
    with pytest.warns(UserWarning) as caught:
        assert [len(p) for p in random_split(_dataset(2), [0.9, 0.05, 0.05])] == [2, 0, 0]
    assert ["index 1 is 0" in str(w.message) for w in caught] == [True, False]


def test_random_split_bad_lengths():
    with pytest.raises(ValueError, match="does not equal"):
        random_split(_dataset(10), [3, 3])
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_split(_dataset(10), [1.5, -0.5])


# ---------------------------------------------------------------- batching
def test_batches_in_order_with_last_short_batch():
    ds = _dataset(10)
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    x, y = batches[1]
    assert isinstance(batches[1], list)  # a batch of tuples collates to a list, as in PyTorch
    np.testing.assert_array_equal(x.numpy(), ds.tensors[0].numpy()[4:8])
    assert y.dtype is G.int64 and y.tolist() == [40, 50, 60, 70]


def test_drop_last():
    loader = DataLoader(_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [b[0].shape[0] for b in loader] == [4, 4]


@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), drop_last=st.booleans(),
       shuffle=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_loader_visits_every_sample_once(n, batch_size, drop_last, shuffle, seed):
    loader = DataLoader(_dataset(n), batch_size=batch_size, shuffle=shuffle,
                        drop_last=drop_last, generator=G.Generator().manual_seed(seed))
    sizes = [b[0].shape[0] for b in loader]
    assert len(sizes) == len(loader)
    assert all(s == batch_size for s in sizes[:-1])
    if sizes:  # drop_last with fewer samples than a batch yields no batch at all
        assert 0 < sizes[-1] <= batch_size
    else:
        assert drop_last and n < batch_size
    order = _order(loader)
    expected = n - n % batch_size if drop_last else n
    assert len(order) == expected and len(set(order)) == expected
    if not shuffle:
        assert order == list(range(expected))


def test_shuffle_reproducible_under_manual_seed_and_new_each_epoch():
    loader = DataLoader(_dataset(50), batch_size=8, shuffle=True)
    G.manual_seed(0)
    first, second = _order(loader), _order(loader)
    G.manual_seed(0)
    assert _order(loader) == first and _order(loader) == second
    assert first != second  # reshuffled every epoch
    assert sorted(first) == list(range(50))


def test_explicit_generator_is_independent_of_global_stream():
    def orders(seed):
        loader = DataLoader(_dataset(30), batch_size=5, shuffle=True,
                            generator=G.Generator().manual_seed(seed))
        G.rand(7)  # draws from the global stream must not matter
        return _order(loader), _order(loader)
    G.manual_seed(1)
    a = orders(5)
    G.manual_seed(2)
    assert orders(5) == a
    assert orders(6) != a


@pytest.mark.parametrize("wrap", ["plain", "subset", "nested"])
def test_fast_batches_equal_per_sample_collation(wrap):
    ds = _dataset(23, features=4)
    if wrap != "plain":
        ds = Subset(ds, list(range(22, 0, -2)) + [-1])
    if wrap == "nested":
        ds = Subset(ds, G.tensor([4, 0, 11, 3, 3, 8]))

    def batches(collate_fn):
        return list(DataLoader(ds, batch_size=5, shuffle=True, collate_fn=collate_fn,
                               generator=G.Generator().manual_seed(9)))
    fast, slow = batches(None), batches(_slow)
    assert len(fast) == len(slow)
    for f, s in zip(fast, slow):
        assert type(f) is type(s) and len(f) == len(s)
        for a, b in zip(f, s):
            assert a.dtype is b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_subclass_overriding_getitem_is_fetched_per_sample():
    class Doubled(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x * 2, y

    ds = Doubled(G.ones(6, 2), G.arange(6))
    x, _ = next(iter(DataLoader(ds, batch_size=3)))
    np.testing.assert_array_equal(x.numpy(), np.full((3, 2), 2.0))
    sub = Subset(ds, [0, 1])
    x, _ = next(iter(DataLoader(sub, batch_size=2)))
    np.testing.assert_array_equal(x.numpy(), np.full((2, 2), 2.0))


def test_gradients_flow_through_fast_batches():
    w = G.ones(6, 2, requires_grad=True)
    x, _ = next(iter(DataLoader(TensorDataset(w, G.arange(6)), batch_size=3)))
    x.backward(G.ones(3, 2))
    np.testing.assert_array_equal(w.grad.numpy(), [[1, 1]] * 3 + [[0, 0]] * 3)


class _Squares(Dataset):
    """A dataset of dict samples, read one by one."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.full(2, i, np.float32), "n": i, "name": f"s{i}"}


def test_custom_dataset_dict_samples():
    batch = next(iter(DataLoader(_Squares(), batch_size=3)))
    assert set(batch) == {"x", "n", "name"}
    np.testing.assert_array_equal(batch["x"].numpy(), [[0, 0], [1, 1], [2, 2]])
    assert batch["n"].dtype is G.int64 and batch["n"].tolist() == [0, 1, 2]
    assert batch["name"] == ["s0", "s1", "s2"]


def test_batch_size_none_converts_without_batching():
    samples = list(DataLoader(_Squares(), batch_size=None))
    assert len(samples) == 5
    assert isinstance(samples[1]["x"], G.Tensor) and samples[1]["x"].tolist() == [1, 1]
    assert samples[1]["n"] == 1


def test_sampler_and_batch_sampler_arguments():
    ds = _dataset(10)
    loader = DataLoader(ds, batch_size=3, sampler=[9, 8, 7, 1])
    assert _order(loader) == [9, 8, 7, 1] and len(loader) == 2
    loader = DataLoader(ds, batch_sampler=[[0, 5], [2], [9, 9, 1]])
    assert [b[1].tolist() for b in loader] == [[0, 50], [20], [90, 90, 10]]
    assert len(loader) == 3


@pytest.mark.parametrize("kwargs, match", [
    (dict(shuffle=True, sampler=[0, 1]), "mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), "mutually exclusive with drop_last"),
    (dict(num_workers=2), "main process only; num_workers must be 0"),
    (dict(num_workers=-1), "non-negative"),
    (dict(batch_size=0), "positive integer"),
])
def test_loader_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(_dataset(4), **kwargs)


def test_index_out_of_range_is_reported():
    loader = DataLoader(_dataset(4), batch_size=2, sampler=[0, 7])
    with pytest.raises(IndexError, match="out of bounds"):
        list(loader)


# ---------------------------------------------------------------- samplers
def test_samplers():
    ds = _dataset(7)
    assert list(SequentialSampler(ds)) == list(range(7))
    rs = RandomSampler(ds, generator=G.Generator().manual_seed(0))
    assert sorted(rs) == list(range(7)) and len(rs) == 7
    more = list(RandomSampler(ds, num_samples=16, generator=G.Generator().manual_seed(0)))
    assert len(more) == 16 and sorted(more[:7]) == sorted(more[7:14]) == list(range(7))
    drawn = list(RandomSampler(ds, replacement=True, num_samples=50,
                               generator=G.Generator().manual_seed(0)))
    assert len(drawn) == 50 and set(drawn) <= set(range(7))
    sub = list(SubsetRandomSampler([10, 20, 30], generator=G.Generator().manual_seed(0)))
    assert sorted(sub) == [10, 20, 30]
    assert list(BatchSampler(range(5), 2, False)) == [[0, 1], [2, 3], [4]]
    assert len(BatchSampler(range(5), 2, False)) == 3
    assert len(BatchSampler(range(5), 2, True)) == 2
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(ds, num_samples=0)
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler(ds, replacement=1)


def test_generator():
    g = G.Generator()
    assert g.manual_seed(42) is g and g.initial_seed() == 42
    a = G.rand(5, generator=g).numpy()
    np.testing.assert_array_equal(G.rand(5, generator=G.Generator().manual_seed(42)).numpy(), a)
    default = G.manual_seed(7)
    assert isinstance(default, G.Generator) and default.initial_seed() == 7
    assert G.manual_seed(8) is default
    fresh = g.seed()
    assert isinstance(fresh, int) and g.initial_seed() == fresh
    with pytest.raises(TypeError, match="genesis.Generator"):
        G.randperm(3, generator=np.random.default_rng(0))


# ---------------------------------------------------------------- collation
def test_collate_tensors_numbers_and_strings():
    out = default_collate([G.tensor([1.0, 2.0]), G.tensor([3.0, 4.0])])
    assert out.shape == (2, 2) and out.tolist() == [[1, 2], [3, 4]]
    floats = default_collate([0.5, 1.5])
    assert floats.dtype is G.float64 and floats.tolist() == [0.5, 1.5]
    ints = default_collate([3, 4])
    assert ints.dtype is G.int64 and ints.tolist() == [3, 4]
    assert default_collate([True, False]).dtype is G.bool
    assert default_collate(["a", "b"]) == ["a", "b"]
    assert default_collate([b"a", b"b"]) == [b"a", b"b"]


def test_collate_numpy():
    out = default_collate([np.ones((2, 2), np.float64), np.zeros((2, 2), np.float64)])
    assert out.dtype is G.float64 and out.shape == (2, 2, 2)
    assert default_collate([np.arange(3, dtype=np.uint8)] * 2).dtype is G.int64
    scalars = default_collate([np.float32(1), np.float32(2)])
    assert scalars.dtype is G.float32 and scalars.tolist() == [1, 2]
    with pytest.raises(TypeError, match="dtype <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])


def test_collate_structures():
    Point = collections.namedtuple("Point", "x y")
    batch = [(G.tensor([i]), {"a": i, "b": [i, float(i)]}, Point(i, "p")) for i in range(3)]
    t, d, p = default_collate(batch)
    assert t.tolist() == [[0], [1], [2]]
    assert d["a"].tolist() == [0, 1, 2]
    assert d["b"][0].tolist() == [0, 1, 2] and d["b"][1].dtype is G.float64
    assert isinstance(p, Point) and p.x.tolist() == [0, 1, 2] and p.y == ["p", "p", "p"]
    ordered = default_collate([collections.OrderedDict(z=1, a=2)] * 2)
    assert isinstance(ordered, collections.OrderedDict) and list(ordered) == ["z", "a"]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([G.zeros(2), G.zeros(3)])


def test_default_convert():
    out = default_convert({"a": np.arange(3), "b": (np.float64(2.0), "s"), "c": 5})
    assert isinstance(out["a"], G.Tensor) and out["a"].dtype is G.int64
    assert isinstance(out["b"], list) and out["b"][0].dtype is G.float64 and out["b"][1] == "s"
    assert out["c"] == 5


def test_loader_over_concatenated_datasets():
    loader = DataLoader(_dataset(3) + _dataset(2), batch_size=2)
    assert [b[1].tolist() for b in loader] == [[0, 10], [20, 0], [10]]
