"""Handwritten-digit images (MNIST and its IDX-format relatives) from a local folder.

The folder holds the IDX files as distributed (`t10k-images-idx3-ubyte.gz` ...). A file may also be stored split
into byte-wise parts (`<name>.gz.part0`, `<name>.gz.part1`, ...), and the MNIST training images may come as the
twenty 3,000-row PNG strips `train-images-png/mnist_batch_<b>.png` (row r of strip b is image 3000·b + r).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
_PNG_STRIPS, _PNG_STRIP_ROWS = 20, 3000


@dataclass(frozen=True)
class Digits:
    """A digit data set, images flattened row-major and scaled to [0, 1].

    Attributes:
        train_images: (60000, 784) float32. train_labels: (60000,) int64.
        test_images: (10000, 784) float32. test_labels: (10000,) int64.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def _read_bytes(folder: Path, name: str) -> bytes | None:
    """The decompressed bytes of `name`(.gz), joining `.gz.part<k>` pieces when the file is split."""
    if (folder / name).is_file():
        return (folder / name).read_bytes()
    if (folder / f"{name}.gz").is_file():
        return gzip.decompress((folder / f"{name}.gz").read_bytes())
    parts, k = [], 0
    while (folder / f"{name}.gz.part{k}").is_file():
        parts.append((folder / f"{name}.gz.part{k}").read_bytes())
        k += 1
    if not parts:
        return None
    try:
        return gzip.decompress(b"".join(parts))
    except EOFError:
        raise ValueError(
            f"{folder / name}.gz.part0..{k - 1} end before the gzip stream does: parts are missing"
        ) from None


def _parse_idx(data: bytes, name: str, magic: int) -> np.ndarray:
    found, count = struct.unpack(">II", data[:8])
    if found != magic:
        raise ValueError(f"{name}: IDX magic {found}, expected {magic}")
    if magic == _LABELS_MAGIC:
        return np.frombuffer(data, np.uint8, count=count, offset=8)
    rows, cols = struct.unpack(">II", data[8:16])
    return np.frombuffer(data, np.uint8, count=count * rows * cols, offset=16).reshape(count, rows * cols)


def _train_images_from_png(folder: Path) -> np.ndarray | None:
    strips = [folder / "train-images-png" / f"mnist_batch_{b}.png" for b in range(_PNG_STRIPS)]
    if not all(path.is_file() for path in strips):
        return None
    from PIL import Image

    images = np.concatenate([np.asarray(Image.open(path).convert("L")) for path in strips])
    if images.shape != (_PNG_STRIPS * _PNG_STRIP_ROWS, 784):
        raise ValueError(f"{folder / 'train-images-png'}: strips give an array {images.shape}, expected (60000, 784)")
    return images


def load_digits(root: str | os.PathLike) -> Digits:
    """Load the train and test images and labels of an IDX digit folder (e.g. `../shared/data/mnist`).

    Raises:
        FileNotFoundError: `root` is not a folder, or one of the four sets is missing from it.
        ValueError: a file is not the IDX array it should be (wrong magic, image/label counts differ, split
            parts missing).
    """
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"digit data folder not found: {folder}")
    arrays = {}
    for split in ("train", "t10k"):
        for kind, magic in (("images", _IMAGES_MAGIC), ("labels", _LABELS_MAGIC)):
            name = f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
            data = _read_bytes(folder, name)
            if data is not None:
                arrays[split, kind] = _parse_idx(data, name, magic)
            elif (split, kind) == ("train", "images") and (png := _train_images_from_png(folder)) is not None:
                arrays[split, kind] = png
            else:
                raise FileNotFoundError(f"{folder} has no {name}.gz (nor split parts of it)")
    for split in ("train", "t10k"):
        if len(arrays[split, "images"]) != len(arrays[split, "labels"]):
            raise ValueError(
                f"{folder}: {len(arrays[split, 'images'])} {split} images but {len(arrays[split, 'labels'])} labels"
            )

    def images(split: str) -> torch.Tensor:
        return torch.from_numpy(arrays[split, "images"].astype(np.float32) / 255.0)

    def labels(split: str) -> torch.Tensor:
        return torch.from_numpy(arrays[split, "labels"].astype(np.int64))

    return Digits(images("train"), labels("train"), images("t10k"), labels("t10k"))
