"""Checkpoint files: atomic writes of plain state, safe loads.

A checkpoint is a dict of tensors, numbers, strings, bools, None and nested lists/tuples/dicts of those. It is
written with `torch.save` to a temporary file in the target folder and moved into place with `os.replace`, so a
run killed mid-write leaves the previous checkpoint intact. It is read with `torch.load(weights_only=True)`, which
refuses pickled objects: a checkpoint can be loaded from an untrusted source without running code.
"""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

_PLAIN_SCALARS = (bool, int, float, str, type(None), torch.Tensor, torch.dtype, torch.device, torch.Size)


def check_plain(value: Any, where: str) -> None:
    """Raise TypeError (naming the key path `where`) unless `value` is plain checkpoint data."""
    if isinstance(value, _PLAIN_SCALARS):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint keys must be str or int; got {type(key).__name__} at {where}")
            check_plain(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_plain(item, f"{where}[{index}]")
        return
    raise TypeError(
        f"checkpoint values must be tensors, numbers, strings, None or lists/dicts of those; "
        f"got {type(value).__name__} at {where}"
    )


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write `state` to `path` atomically (temporary file in the same folder, then `os.replace`).

    Args:
        path: destination file; its parent folder is created if missing.
        state: dict of tensors, numbers, strings, bools, None, and nested lists/tuples/dicts of those (a model's
            `state_dict()`, an optimizer's `state_dict()`, RNG states, configs as dicts). No other objects, so the
            file loads with `torch.load(weights_only=True)`.

    Raises:
        TypeError: `state` is not a dict or holds a value of another type (named by its key path).
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict; got {type(state).__name__}")
    check_plain(state, "state")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint` (tensors land on `map_location`, CPU by default).

    Raises:
        FileNotFoundError: `path` does not exist or is not a file.
        ValueError: the file is truncated, corrupt, not a torch checkpoint, holds pickled objects, or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several unrelated types for bad files
        raise ValueError(f"checkpoint {path} is corrupt or not a plain torch checkpoint: {err}") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} must hold a dict; got {type(state).__name__}")
    return state


def data_digest(*paths: str | os.PathLike | None) -> str:
    """A SHA-256 digest of the contents of data files or folders (`None` entries skipped), for checkpoints.

    A run stores it so that `--resume` refuses other data; it depends on the bytes only (a folder: its files'
    relative paths and bytes, in sorted order), so a moved or renamed copy of the same data resumes.

    Raises:
        FileNotFoundError: a path that does not exist.
    """
    digest = hashlib.sha256()
    for path in (Path(p) for p in paths if p is not None):
        if not path.exists():
            raise FileNotFoundError(f"data not found: {path}")
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"file")
            with file.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    return f"sha256:{digest.hexdigest()}"
