"""Run by test_ddp.py under `torchrun --nproc_per_node 2`: train the toy regression with DDP on gloo.

Each rank saves its final weights and EMA to <out>/rank<r>.pt for the test to compare.
"""

import sys
from pathlib import Path

import torch.distributed as dist

from fastsim.training import save_checkpoint
from tests.training import fit_helpers as toy


def main(out: str) -> None:
    dist.init_process_group("gloo")
    try:
        trainer = toy.trainer(Path(out) / "run", epochs=6)
        result = trainer.fit(toy.batches)
        state = {
            "model": trainer.model.state_dict(),
            "ema": trainer.ema.shadow,
            "history": result.history,
            "steps": trainer.ema.num_updates,
        }
        save_checkpoint(Path(out) / f"rank{dist.get_rank()}.pt", state)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
