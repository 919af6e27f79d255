"""`fastsim train <model>` and `fastsim rollout`: dispatch to the experiment module of each learned simulator.

Each experiment module named in `EXPERIMENTS` exposes
    add_train_arguments(parser: argparse.ArgumentParser) -> None   (calls `add_common_train_arguments`)
    train_command(args: argparse.Namespace) -> int
    rollout_command(checkpoint: dict, args: argparse.Namespace) -> int
and is imported only when its command runs, so a missing or broken experiment never affects the other commands.
`fastsim rollout` reads `extra["model_kind"]` from the checkpoint to pick the module.
"""

import argparse
import contextlib
import importlib
import os
import sys
from types import ModuleType

from fastsim.cli.arguments import number

EXPERIMENTS: dict[str, str] = {
    "ngs": "fastsim.experiments.ngs",
    "gnrk": "fastsim.experiments.gnrk",
    "ngs_traffic": "fastsim.experiments.traffic",
}
# `fastsim train <model> --system <name>` runs another experiment module for these pairs: NGS's traffic variant is
# a different model on different data (fastsim.experiments.traffic); its checkpoints say "ngs_traffic".
SYSTEM_VARIANTS: dict[tuple[str, str], str] = {("ngs", "traffic"): "ngs_traffic"}
_EXPERIMENT_API = ("add_train_arguments", "train_command", "rollout_command")

_TRAIN_EXAMPLE = """examples:
  fastsim train ngs --help
  fastsim train ngs --system heat --data heat.npz --out runs/heat
  fastsim train ngs --system heat --data heat.npz --out runs/heat --resume     (continue a killed run)
  torchrun --nproc_per_node 2 --no-python fastsim train ngs --system heat ...  (data-parallel; gloo on CPU)
  fastsim train ngs --system traffic --data ../shared/data/los-loop --out runs/traffic   (docs/ngs.md, Traffic)

The run writes <out>/last.pt (everything to resume), <out>/best.pt (EMA weights of the best validation epoch) and
<out>/history.json; see docs/training.md."""


def add_common_train_arguments(parser: argparse.ArgumentParser, *, epochs: int, batch_size: int, lr: float) -> None:
    """Add the options every `fastsim train <model>` shares, with the experiment's defaults.

    --data, --out, --epochs, --batch-size, --lr, --seed, --device, --resume, --quiet.
    """
    parser.add_argument("--data", required=True, help="training dataset (.npz from `fastsim simulate`)")
    parser.add_argument("--out", required=True, help="run folder for last.pt, best.pt, history.json and plots")
    parser.add_argument("--epochs", type=number(int, "--epochs", 1), default=epochs, help=f"(default {epochs})")
    parser.add_argument(
        "--batch-size", type=number(int, "--batch-size", 1), default=batch_size, help=f"(default {batch_size})"
    )
    parser.add_argument("--lr", type=number(float, "--lr"), default=lr, help=f"peak learning rate (default {lr})")
    parser.add_argument("--seed", type=number(int, "--seed", 0), default=0, help="(default 0)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summaries")


def common_config_fields(args: argparse.Namespace) -> dict:
    """The `TrainConfig` fields the common options set: `TrainConfig(**common_config_fields(args), ...)`."""
    return {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "out": args.out,
        "quiet": args.quiet,
    }


def resolve_device(name: str):
    """`torch.device` for a --device value; "auto" is CUDA when available, else CPU.

    Raises:
        ValueError: an unknown device string, or CUDA asked for without a CUDA device.
    """
    import torch

    if name == "auto":  # under torchrun, each rank takes the GPU of its local rank
        return torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available")
    return device


def load_experiment(kind: str) -> ModuleType:
    """Import the experiment module of model `kind` and check it has the experiment API.

    Raises:
        ValueError: an unknown kind, or its module is not part of this installation.
        TypeError: the module lacks one of add_train_arguments / train_command / rollout_command.
    """
    if kind not in EXPERIMENTS:
        raise ValueError(f"unknown model {kind!r}; known models: {', '.join(EXPERIMENTS)}")
    name = EXPERIMENTS[kind]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        raise ValueError(f"model {kind!r} is not available in this installation (no module {name})") from None
    missing = [attr for attr in _EXPERIMENT_API if not callable(getattr(module, attr, None))]
    if missing:
        raise TypeError(f"experiment module {name} lacks {', '.join(missing)}")
    return module


def _experiment_kind(model: str, options: list[str]) -> str:
    """The experiment of `fastsim train <model> <options>`: `SYSTEM_VARIANTS[(model, --system)]` or `model`."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--system")
    return SYSTEM_VARIANTS.get((model, probe.parse_known_args(options)[0].system), model)


@contextlib.contextmanager
def _process_group_from_torchrun():
    """Join the process group that `torchrun` describes in the environment (WORLD_SIZE > 1), for the run's length.

    gloo on CPU, NCCL with CUDA (each rank on cuda:LOCAL_RANK); the trainer then wraps the model in DDP and shards
    the batches. Without torchrun's variables, or with a group already set up, nothing happens.
    """
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        yield
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _train(args: argparse.Namespace) -> int:
    module = load_experiment(_experiment_kind(args.model, args.options))
    summary = module.__doc__.split("\n\n", 1)[0]  # the rest of the docstring is API documentation
    parser = argparse.ArgumentParser(prog=f"fastsim train {args.model}", description=summary)
    module.add_train_arguments(parser)
    options = parser.parse_args(args.options)
    options.argv = args.argv
    try:
        with _process_group_from_torchrun():
            return module.train_command(options)
    except KeyboardInterrupt:
        print(f"interrupted; continue with the same command and --resume ({options.out})", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as err:
        parser.error(str(err))


def add_train(commands) -> None:
    """Register `fastsim train <model> [options]` (the model's options are listed by `fastsim train <model> -h`)."""
    train = commands.add_parser(
        "train",
        help="train a learned simulator (ngs, gnrk)",
        epilog=_TRAIN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models = sorted(set(EXPERIMENTS) - set(SYSTEM_VARIANTS.values()))
    train.add_argument("model", choices=models, help="which model's experiment to run")
    train.add_argument("options", nargs=argparse.REMAINDER, help="the model's options (see fastsim train MODEL -h)")
    train.set_defaults(run=_train, parser=train)


def _rollout(args: argparse.Namespace) -> int:
    from fastsim.training import load_checkpoint

    checkpoint = load_checkpoint(args.checkpoint)
    extra = checkpoint.get("extra")
    kind = extra.get("model_kind") if isinstance(extra, dict) else None
    if not isinstance(kind, str):
        raise ValueError(f"{args.checkpoint} has no extra['model_kind']: not written by a fastsim train run")
    args.device = resolve_device(args.device)
    return load_experiment(kind).rollout_command(checkpoint, args)


def add_rollout(commands) -> None:
    """Register `fastsim rollout --checkpoint PATH --data PATH --out DIR [--device] [--batch-size] [--quiet]`."""
    rollout = commands.add_parser("rollout", help="roll a trained simulator out on a dataset; metrics and plots")
    rollout.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a `fastsim train` run")
    rollout.add_argument("--data", required=True, help="dataset to roll out on (.npz from `fastsim simulate`)")
    rollout.add_argument("--out", required=True, help="folder for the results JSON and plots")
    rollout.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    rollout.add_argument("--batch-size", type=number(int, "--batch-size", 1), default=16, help="graphs per batch")
    rollout.add_argument("--quiet", action="store_true", help="no progress bars or summaries")
    rollout.add_argument(
        "--tableaux", nargs="+", metavar="NAME", help="gnrk: RK methods to roll out with (default: the trained one)"
    )
    rollout.set_defaults(run=_rollout, parser=rollout)
