"""Fashion-MNIST / MNIST read from their IDX files (gzipped or not), found without --data-root."""
import gzip

import numpy as np
import pytest

from msq.config import DataConfig
from msq.data import idx, load_dataset
from msq.errors import DatasetNotFoundError


from test_data import _write_idx


def write_idx(path, array, compress):
    _write_idx(path, array)
    if compress:
        path.write_bytes(gzip.compress(path.read_bytes()))


def fake_split(folder, n, compress, seed):
    rng = np.random.default_rng(seed)
    for train, count in ((True, n), (False, n // 2)):
        images, labels = idx.SPLIT_FILES[train]
        suffix = ".gz" if compress else ""
        write_idx(folder / (images + suffix), rng.integers(0, 256, (count, 28, 28)), compress)
        write_idx(folder / (labels + suffix), rng.integers(0, 10, count), compress)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip_plain_and_gzipped(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.gz" if compress else "a")
    write_idx(path, array, compress)
    assert np.array_equal(idx.read_idx(path), array)


def test_bad_idx_file_is_named(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        idx.read_idx(path)


def test_fashion_mnist_loads_from_data_root_in_torchvision_layout(tmp_path):
    folder = tmp_path / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    fake_split(folder, 40, compress=True, seed=0)
    bundle = load_dataset(DataConfig(name="fashion-mnist", root=str(tmp_path), limit=30))
    assert len(bundle.train) == 30 and len(bundle.val) == 20
    assert bundle.train.images.shape[1:] == (1, 28, 28)
    assert str(folder) in bundle.description


def test_missing_files_say_how_to_install_them(tmp_path, monkeypatch):
    monkeypatch.setitem(idx.IDX_LOCATIONS, "fashion-mnist", ("FashionMNIST/raw", (str(tmp_path / "none"),)))
    with pytest.raises(DatasetNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_dataset(DataConfig(name="fashion-mnist", root=str(tmp_path)))


@pytest.mark.skipif(idx.find_idx_files("fashion-mnist", "./nowhere", True) is None,
                    reason="Debian's dataset-fashion-mnist is not installed (make install installs it)")
def test_the_real_fashion_mnist_from_the_debian_package():
    bundle = load_dataset(DataConfig(name="fashion-mnist", root="./nowhere", limit=1000))
    assert len(bundle.val) == 10000 and len(bundle.train) == 1000
    assert set(bundle.val.labels.tolist()) == set(range(10))
