"""Datasets and the batch loader: the bundled real data is what it claims to be, the split is fixed by
split_seed alone, batches are deterministic given (seed, epoch), and every documented error."""
import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from msq.config import DataConfig
from msq.data import dataset_info, example_input, list_datasets, load_dataset, make_loader
from msq.data.bundled import digits_arrays, mnist5k_arrays
from msq.data.loader import random_crop_flip
from msq.data.split import split_indices
from msq.errors import DatasetNotFoundError, UnknownNameError


# -- bundled data --------------------------------------------------------------------------------
def test_mnist5k_raw_data_looks_like_mnist():
    images, labels = mnist5k_arrays()
    assert images.shape == (5000, 1, 28, 28) and images.dtype == np.uint8 and labels.shape == (5000,)
    assert 25 < images.mean() < 40                      # MNIST's mean pixel is ~33 of 255
    assert images.max() == 255 and images[:, :, :2, :].mean() < 1    # ink is centred: blank top rows
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 5000 and counts.min() > 350 and counts.max() < 650   # all ten digits, not degenerate
    # the label column is the last one: mean images of "1"s are thin (few ink pixels), of "0"s wide
    ink = [(images[labels == d] > 128).mean() for d in range(10)]
    assert int(np.argmin(ink)) == 1


def test_mnist5k_split_is_4000_1000_stratified_and_normalised():
    data = load_dataset(DataConfig(name="mnist5k", val_fraction=0.2))
    assert (len(data.train), len(data.val)) == (4000, 1000)
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 1, 28)
    x, y = data.train.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3   # normalised by train stats
    assert torch.equal(torch.bincount(y), torch.full((10,), 400))            # 500 per class, split 400/100
    assert 0.10 < data.mean[0] < 0.16 and 0.28 < data.std[0] < 0.34
    assert torch.equal(torch.bincount(data.val.tensors[1]), torch.full((10,), 100))


def test_split_depends_only_on_split_seed():
    a = load_dataset(DataConfig(name="mnist5k"))
    torch.manual_seed(123)      # a different training seed must not move the split
    b = load_dataset(DataConfig(name="mnist5k"))
    c = load_dataset(DataConfig(name="mnist5k", split_seed=1))
    assert torch.equal(a.val.tensors[0], b.val.tensors[0]) and torch.equal(a.train.tensors[1], b.train.tensors[1])
    assert not torch.equal(a.val.tensors[0], c.val.tensors[0])


def test_split_indices_are_disjoint_exact_and_stratified():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    train, val = split_indices(labels, 0.25, seed=0)
    assert len(val) == 25 and len(train) == 75
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(range(100))
    assert np.bincount(labels[val]).tolist() == [13, 7, 5]     # quotas 12.5, 7.5, 5: the tie goes to class 0


def test_limit_caps_training_samples_only():
    data = load_dataset(DataConfig(name="mnist5k", limit=300))
    assert (len(data.train), len(data.val)) == (300, 1000)


def test_digits_shape_and_same_data_as_sklearn():
    from sklearn.datasets import load_digits

    images, labels = digits_arrays()
    reference = load_digits()
    assert np.array_equal(images[:, 0], reference.images) and np.array_equal(labels, reference.target)
    data = load_dataset(DataConfig(name="digits"))
    assert data.train[0][0].shape == (1, 8, 8) and len(data.train) + len(data.val) == 1797


def test_synthetic_is_deterministic_and_sized_by_limit():
    a, b = load_dataset(DataConfig(name="synthetic")), load_dataset(DataConfig(name="synthetic"))
    assert len(a.train) + len(a.val) == 512 and torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert len(load_dataset(DataConfig(name="synthetic", limit=100)).train) == 100
    rgb = load_dataset(DataConfig(name="synthetic"), in_channels=3, image_size=32, num_classes=4)
    assert rgb.train[0][0].shape == (3, 32, 32) and rgb.num_classes == 4


def test_tinycnn_learns_digits_above_90_percent():
    from sample_models import create_model

    torch.manual_seed(0)
    data = load_dataset(DataConfig(name="digits"))
    model = create_model("tinycnn", num_classes=10, in_channels=1, image_size=8)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(5):
        for x, y in make_loader(data.train, 64, shuffle=True, seed=0, epoch=epoch):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    x_val, y_val = data.val.tensors
    with torch.no_grad():
        accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
    assert accuracy > 0.90      # ~0.97 here


# -- loader --------------------------------------------------------------------------------------
def _batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def _same(a, b):
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))


def test_loader_is_deterministic_given_seed_and_epoch():
    data = load_dataset(DataConfig(name="digits"))
    first = _batches(make_loader(data.train, 100, shuffle=True, seed=0, epoch=0))
    assert _same(first, _batches(make_loader(data.train, 100, shuffle=True, seed=0, epoch=0)))
    assert not _same(first, _batches(make_loader(data.train, 100, shuffle=True, seed=0, epoch=1)))
    assert not _same(first, _batches(make_loader(data.train, 100, shuffle=True, seed=1, epoch=0)))
    loader = make_loader(data.train, 100, shuffle=True, seed=0, epoch=0)
    assert _same(_batches(loader), _batches(loader))            # iterating again replays the epoch
    seen = torch.cat([y for _, y in first])
    assert torch.equal(seen.sort().values, data.train.tensors[1].sort().values)   # a permutation


def test_loader_lengths_and_order_without_shuffle():
    ds = TensorDataset(torch.arange(10).float().view(10, 1), torch.arange(10))
    assert len(make_loader(ds, 4, shuffle=False)) == 3 and len(make_loader(ds, 4, shuffle=False, drop_last=True)) == 2
    assert [y.tolist() for _, y in make_loader(ds, 4, shuffle=False)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [len(y) for _, y in make_loader(ds, 4, shuffle=True, drop_last=True)] == [4, 4]
    subset = Subset(ds, [9, 7, 5])
    assert [y.tolist() for _, y in make_loader(subset, 2, shuffle=False)] == [[9, 7], [5]]


def test_loader_falls_back_to_dataloader_for_other_datasets():
    class Squares(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.tensor([float(i * i)]), i

    a = _batches(make_loader(Squares(), 3, shuffle=True, seed=5, epoch=2))
    assert len(a) == 4 and _same(a, _batches(make_loader(Squares(), 3, shuffle=True, seed=5, epoch=2)))


def test_augmentation_crops_and_flips_deterministically():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    a = random_crop_flip(x, torch.Generator().manual_seed(0))
    b = random_crop_flip(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    no_shift = random_crop_flip(x, torch.Generator().manual_seed(0), pad=0)
    assert all(torch.equal(no_shift[i], x[i]) or torch.equal(no_shift[i], x[i].flip(-1)) for i in range(2))


def test_example_input_has_the_dataset_shape():
    data = load_dataset(DataConfig(name="digits"))
    assert example_input(data).shape == (2, 1, 8, 8)
    assert example_input(data, batch=1).shape == (1, 1, 8, 8)


# -- names and errors ----------------------------------------------------------------------------
def test_list_and_info():
    assert {"mnist5k", "digits", "synthetic", "cifar10", "mnist", "fashion-mnist"} <= set(list_datasets())
    assert dataset_info("mnist5k")["image_size"] == 28 and dataset_info("cifar10")["in_channels"] == 3


def test_unknown_dataset_lists_names_and_imagefolder_form():
    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar11'.*mnist5k, digits.*imagefolder:PATH"):
        load_dataset(DataConfig(name="cifar11"))


@pytest.mark.parametrize("name,folder", [("cifar10", "cifar-10-batches-py"), ("mnist", "MNIST/raw"),
                                         ("fashion-mnist", "FashionMNIST/raw")])
def test_missing_torchvision_root_says_where_and_how(tmp_path, monkeypatch, name, folder):
    from msq.data import idx
    if name in idx.IDX_LOCATIONS:     # not the files a system package may have installed on this machine
        monkeypatch.setitem(idx.IDX_LOCATIONS, name, (folder, (str(tmp_path / "no_system_copy"),)))
    root = tmp_path / "no_data"
    with pytest.raises(DatasetNotFoundError, match=f"{name} not found under {root}.*{folder}.*--data-download"):
        load_dataset(DataConfig(name=name, root=str(root)))


def _write_idx(path, array: np.ndarray) -> None:
    """The IDX file format of the MNIST distribution: magic (0, 0, uint8 = 8, ndim), big-endian dims, data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_torchvision_mnist_from_a_local_root(tmp_path):
    images, labels = mnist5k_arrays()             # real digits written in MNIST's own file format
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, part in (("train", slice(0, 300)), ("t10k", slice(300, 400))):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[part, 0])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels[part])
    data = load_dataset(DataConfig(name="mnist", root=str(tmp_path), limit=200))
    assert (len(data.train), len(data.val), data.image_size, data.in_channels) == (200, 100, 28, 1)
    assert data.mean == (0.1307,) and data.std == (0.3081,)
    x_val, y_val = data.val.tensors
    assert torch.equal(y_val, torch.tensor(labels[300:400]))
    expected = (torch.tensor(images[300:400]).float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(x_val, expected, atol=1e-6)


def _write_images(folder, classes, per_class):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in classes:
        (folder / cls).mkdir(parents=True)
        for i in range(per_class):   # 12x10 images: not square, not the target size
            Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(folder / cls / f"{i}.png")


def test_imagefolder_seeded_split_and_resize(tmp_path):
    _write_images(tmp_path / "imgs", ["cat", "dog"], 5)
    data = load_dataset(DataConfig(name=f"imagefolder:{tmp_path / 'imgs'}", val_fraction=0.2), image_size=16)
    assert (len(data.train), len(data.val), data.num_classes) == (8, 2, 2)
    x, y = next(iter(make_loader(data.train, 8, shuffle=True, seed=0)))
    assert x.shape == (8, 3, 16, 16) and set(y.tolist()) == {0, 1}


def test_imagefolder_uses_train_and_val_subfolders(tmp_path):
    _write_images(tmp_path / "imgs" / "train", ["a", "b", "c"], 2)
    _write_images(tmp_path / "imgs" / "val", ["a", "b", "c"], 1)
    data = load_dataset(DataConfig(name=f"imagefolder:{tmp_path / 'imgs'}", augment=True))
    assert (len(data.train), len(data.val), data.num_classes, data.image_size) == (6, 3, 3, 32)
    assert example_input(data).shape == (2, 3, 32, 32)
    _write_images(tmp_path / "odd" / "train", ["a", "b"], 1)
    _write_images(tmp_path / "odd" / "val", ["a", "c"], 1)
    with pytest.raises(DatasetNotFoundError, match="different class folders"):
        load_dataset(DataConfig(name=f"imagefolder:{tmp_path / 'odd'}"))


def test_imagefolder_missing_or_empty_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="folder .*missing' not found"):
        load_dataset(DataConfig(name=f"imagefolder:{tmp_path / 'missing'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="holds no images"):
        load_dataset(DataConfig(name=f"imagefolder:{tmp_path / 'empty'}"))
