"""Data sets that work offline. Each returns float32 tensors and what the network must fit."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from .dataset import Dataset, DatasetError
from .kws import load_kws


def load_digits(seed: int = 0, test_fraction: float = 0.25, **_ignored) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images): instant, for tests and quick searches."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0 - 0.5)[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    te, tr = order[:n_test], order[n_test:]
    return Dataset("digits", torch.from_numpy(x[tr]), torch.from_numpy(y[tr]),
                   torch.from_numpy(x[te]), torch.from_numpy(y[te]), [str(i) for i in range(10)])


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle-boot"]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (as MNIST ships), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise DatasetError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: truncated ({arr.size} values for shape {shape})")
    return arr.reshape(shape)


def load_fashion(data_dir: str | Path | None = None, seed: int = 0, limit: int | None = None
                 ) -> Dataset:
    """Fashion-MNIST (28x28 grey images, 60k train, 10k test) from Debian's
    ``dataset-fashion-mnist`` or any folder with the four IDX files."""
    root = Path(data_dir) if data_dir else FASHION_DIR
    files = {}
    for part in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        found = [root / f"{part}{ext}" for ext in (".gz", "") if (root / f"{part}{ext}").is_file()]
        if not found:
            raise DatasetError(f"Fashion-MNIST not found in {root} (missing {part}[.gz]); install "
                               "it with 'apt-get install dataset-fashion-mnist' or pass "
                               "--data-dir with the IDX files")
        files[part] = found[0]
    xtr = read_idx(files["train-images-idx3-ubyte"])
    ytr = read_idx(files["train-labels-idx1-ubyte"])
    xte, yte = read_idx(files["t10k-images-idx3-ubyte"]), read_idx(files["t10k-labels-idx1-ubyte"])
    if limit:
        order = np.random.default_rng(seed).permutation(len(xtr))[:limit]
        xtr, ytr = xtr[order], ytr[order]
        xte, yte = xte[: max(1, limit // 6)], yte[: max(1, limit // 6)]

    def prep(x):  # [0, 1) then centred: the input quantiser sees a symmetric range
        return torch.from_numpy((x.astype(np.float32) / 256.0 - 0.5)[:, None])

    return Dataset("fashion", prep(xtr), torch.from_numpy(ytr.astype(np.int64)), prep(xte),
                   torch.from_numpy(yte.astype(np.int64)), FASHION_CLASSES)


DATASETS = {"digits": load_digits, "fashion": load_fashion, "kws": load_kws}
# what a network for each data set must take and give (known without loading the data)
SHAPES = {"digits": ((1, 1, 8, 8), 10), "fashion": ((1, 1, 28, 28), 10), "kws": ((1, 40, 101), 12)}


def space_kwargs_for(name: str) -> dict:
    if name not in SHAPES:
        raise DatasetError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    shape, classes = SHAPES[name]
    return {"input_shape": list(shape), "num_classes": classes}


def load_dataset(name: str, **kwargs) -> Dataset:
    if name not in DATASETS:
        raise DatasetError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name](**kwargs)
