"""`fastsim info-plane`: train one autoencoder species and record its information plane on MNIST."""

import argparse
import sys

from fastsim.cli.arguments import number

_EXAMPLE = """example:
  fastsim info-plane --model sae --out runs/sae

Trains the species on MNIST (--data) while measuring I(X;T) and I(T;X') of every layer on the first --probe-size
test images with the matrix-based Renyi estimator, and writes results.json and information_plane.png into --out.
The default schedule is reduced (10,000 iterations, the plane every 20, the test loss every 200); --full runs the
authors' (30,000 iterations, both every iteration). A checkpoint is saved every --checkpoint-every iterations;
after an interruption the same command with --resume continues it to the same result."""


def _info_plane(args: argparse.Namespace) -> int:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _train(args)
    finally:
        torch.set_num_threads(threads)  # main() may run inside a longer-lived process (tests)


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    from fastsim.experiments.information_flows import FlowConfig, run

    base = FlowConfig(model=args.model) if args.full else FlowConfig.quick(args.model)
    changes = {
        name: getattr(args, name)
        for name in ("iterations", "mi_every", "test_every", "probe_size", "bandwidth", "checkpoint_every", "seed")
        if getattr(args, name) is not None
    }
    config = dataclasses.replace(base, **changes)
    try:
        results = run(config, args.out, data=args.data, resume=args.resume, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"interrupted; continue with the same command and --resume ({args.out})", file=sys.stderr)
        return 130
    if not args.quiet:
        summary = results["summary"]
        answer = {True: "yes", False: "no"}
        print(
            f"wrote {args.out}/results.json and information_plane.png: peak I(X;Z) {summary['peak_mi_code']:.3f} "
            f"bits at iteration {summary['peak_iteration']}, final {summary['final_mi_code']:.3f}; compression "
            f"phase: {answer[summary['compression']]} (paper: {answer[summary['paper_compression']]})"
        )
    return 0


# The species of fastsim.experiments.information_flows.SPECIES, spelled out so that building the parser does not
# import torch (a test checks the two agree).
SPECIES = ("shallow", "deep", "sae", "tae", "vae", "lae", "deep_small")


def add_info_plane(commands) -> None:
    parser = commands.add_parser(
        "info-plane",
        help="information plane of an autoencoder species on MNIST",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, choices=SPECIES, help="the autoencoder species")
    parser.add_argument("--out", required=True, help="output folder (created; its parent must exist)")
    parser.add_argument("--data", default="../shared/data/mnist", help="MNIST folder (default: %(default)s)")
    parser.add_argument("--full", action="store_true", help="the authors' schedule instead of the reduced one")
    parser.add_argument("--iterations", type=number(int, "--iterations", 1), help="optimiser steps")
    parser.add_argument("--mi-every", type=number(int, "--mi-every", 1), help="iterations between planes")
    parser.add_argument("--test-every", type=number(int, "--test-every", 1), help="iterations between test losses")
    parser.add_argument("--probe-size", type=number(int, "--probe-size", 2), help="probe test images (default 100)")
    parser.add_argument("--bandwidth", help="kernel-width rule (default: iprl, the authors' σ = 2·N^(-1/(4+d)))")
    parser.add_argument("--checkpoint-every", type=number(int, "--checkpoint-every", 1), help="default 1000")
    parser.add_argument("--seed", type=number(int, "--seed", 0), help="default 0")
    parser.add_argument(
        "--threads",
        type=number(int, "--threads", 1),
        default=1,
        help="torch CPU threads (default 1: the work is 100x100 matrices, where more threads mostly wait on each "
        "other; on a busy 2-core machine 2 threads ran 35x slower than 1)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run checkpointed in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(run=_info_plane, parser=parser)
