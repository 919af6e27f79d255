"""Training of fastsim's learned simulators: trainer, EMA, LR schedules, checkpoints, data corruptions, metrics.

See docs/training.md.
"""

from fastsim.training.checkpoint import data_digest, load_checkpoint, save_checkpoint
from fastsim.training.config import TrainConfig
from fastsim.training.ema import EMA, ema_decay
from fastsim.training.masks import add_gaussian_noise, grow_mask, missing_node_mask
from fastsim.training.metrics import mae, mean_interval, mse, rmse
from fastsim.training.schedules import CyclicSchedule
from fastsim.training.trainer import Trainer, TrainResult

__all__ = [
    "EMA",
    "CyclicSchedule",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "add_gaussian_noise",
    "data_digest",
    "ema_decay",
    "grow_mask",
    "load_checkpoint",
    "mae",
    "mean_interval",
    "missing_node_mask",
    "mse",
    "rmse",
    "save_checkpoint",
]
