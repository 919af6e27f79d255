"""`fastsim simulate` and `fastsim plot`: dataset generation and a look at one sample."""

import argparse
import json
import sys

from fastsim.cli.arguments import number

_SIMULATE_EXAMPLE = """example:
  fastsim simulate heat --num-samples 1000 --num-nodes 100 200 --mean-degree 2 4 --out heat.npz

Each sample draws N, a mean degree, a graph, coefficients, an initial state and a non-uniform time grid from a
generator seeded by (--seed, sample index). Every --checkpoint-every samples the new samples are saved into
the folder <out stem>.partial/; after an interruption the same command with --resume finishes the run, with
the same data as an uninterrupted run. File format: python -c "import fastsim.datasets as d; help(d)"."""


def _simulate(args: argparse.Namespace) -> int:
    if args.system == "burgers":  # grid datasets have their own file format (fastsim.experiments.gnrk)
        from fastsim.experiments.gnrk import BurgersConfig, simulate_burgers

        config = BurgersConfig(
            dataset=args.dataset,
            num_samples=args.num_samples,
            grid=tuple(args.grid),
            grid_range=tuple(args.grid_range),
            num_steps=args.num_steps[0] if args.num_steps else 200,
            dt=args.dt,
            method=args.method,
            seed=args.seed,
        )
        simulate_burgers(config, args.out, progress=not args.quiet)
        return 0
    from fastsim.datasets import STATUS_CODES
    from fastsim.simulate import SimulationConfig, generate

    config = SimulationConfig(
        system=args.system,
        num_samples=args.num_samples,
        num_nodes=tuple(args.num_nodes),
        mean_degree=tuple(args.mean_degree),
        graph=args.graph,
        max_time=None if args.max_time is None else tuple(args.max_time),
        num_steps=None if args.num_steps is None else tuple(args.num_steps),
        delta=args.delta,
        method=args.method,
        rtol=args.rtol,
        atol=args.atol,
        max_steps=args.max_steps,
        seed=args.seed,
        solver=args.solver,
        dtype=args.dtype,
        device=args.device,
        ranges=args.ranges,
        giant_component=args.giant_component,
    )
    try:
        out = generate(
            config,
            args.out,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            batch_size=args.batch_size,
            progress=not args.quiet,
            command=["fastsim", *args.argv],
        )
    except KeyboardInterrupt:
        print(f"interrupted; continue with the same command and --resume ({args.out})", file=sys.stderr)
        return 130
    if not args.quiet:
        import numpy as np

        with np.load(out) as archive:  # lazy: reads only these members
            meta, status, wall = json.loads(str(archive["metadata"])), archive["status"], archive["wall_time"]
        failed = int((status != STATUS_CODES["success"]).sum())
        print(
            f"wrote {out}: {len(status)} {meta['system']} samples, solver {meta['solver']}, "
            f"{wall.sum():.3g} s solving, {meta['provenance'].get('seconds', 0.0):.3g} s in all"
            + (f"; {failed} trajectories stopped before max_time (see 'status')" if failed else "")
        )
    return 0


def _plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fastsim.datasets import load_dataset, plot_sample

    out = Path(args.out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the folder of --out does not exist: {out.parent}")
    dataset = load_dataset(args.dataset)
    if not -len(dataset) <= args.sample < len(dataset):
        raise ValueError(f"--sample must lie in [0, {len(dataset)}) for {args.dataset}; got {args.sample}")
    plot_sample(dataset[args.sample], out, max_nodes=args.max_nodes)
    return 0


def add_simulate(commands) -> None:
    from fastsim.datasets import SYSTEMS
    from fastsim.simulate import GRAPHS

    sim = commands.add_parser(
        "simulate",
        help="generate a dataset of trajectories on random graphs (.npz)",
        description="Generate an NGS-style dataset of graph dynamics into one versioned .npz file.",
        epilog=_SIMULATE_EXAMPLE
        + "\n\ndefault time grids (--max-time, --num-steps, --delta):\n"
        + "\n".join(f"  {name:<20} {' '.join(map(str, spec.time_grid))}" for name, spec in SYSTEMS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("system", choices=[*SYSTEMS, "burgers"], help="the dynamics (burgers: GNRK's grid datasets)")
    sim.add_argument("--out", required=True, help="the .npz file to write (its folder must exist)")
    sim.add_argument("--num-samples", type=number(int, "--num-samples", 1), default=1000, help="default 1000")
    sim.add_argument(
        "--num-nodes",
        type=number(int, "--num-nodes", 1),
        nargs="+",
        default=[100, 200],
        metavar="N",
        help="N, or the range MIN MAX N is drawn from uniformly (default 100 200)",
    )
    sim.add_argument(
        "--mean-degree",
        type=number(float, "--mean-degree"),
        nargs="+",
        default=[2.0, 4.0],
        metavar="K",
        help="k, or the range MIN MAX k is drawn from uniformly (default 2 4)",
    )
    sim.add_argument(
        "--graph",
        choices=GRAPHS,
        default="er",
        help="er: Erdős–Rényi (default); rr: random round(k)-regular; ba: Barabási–Albert, m=int(k/2)",
    )
    sim.add_argument(
        "--max-time",
        type=number(float, "--max-time"),
        nargs="+",
        help="horizon T (several: increasing horizons of consecutive grid parts); default per system",
    )
    sim.add_argument(
        "--num-steps",
        type=number(int, "--num-steps", 1),
        nargs="+",
        help="output steps (one per --max-time value); default per system",
    )
    sim.add_argument(
        "--delta", type=number(float, "--delta"), help="steps drawn from U[(1-δ)T/S, (1+δ)T/S]; default per system"
    )
    sim.add_argument("--method", default="dopri5", help="solver method (default dopri5; e.g. dop853, tsit5, radau)")
    sim.add_argument("--rtol", type=number(float, "--rtol"), default=1e-8, help="default 1e-8")
    sim.add_argument("--atol", type=number(float, "--atol"), default=1e-8, help="default 1e-8")
    sim.add_argument(
        "--max-steps",
        type=number(int, "--max-steps", 1),
        default=100_000,
        help="attempted steps per trajectory (default 100000)",
    )
    sim.add_argument("--seed", type=number(int, "--seed", 0), default=0, help="default 0")
    sim.add_argument(
        "--solver",
        choices=("auto", "fused", "odeint"),
        default="auto",
        help="auto: the fused ensemble integrator where it applies (dopri5), else odeint per sample",
    )
    sim.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="of the stored trajectories (default float64)",
    )
    sim.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    sim.add_argument(
        "--ranges",
        choices=("ngs", "gnrk"),
        help="heat, rossler: draw coefficients and initial states from this paper's ranges (default: NGS's)",
    )
    sim.add_argument(
        "--giant-component",
        action="store_true",
        help="keep only each graph's largest connected component, as GNRK does (default: whole graphs, as NGS)",
    )
    sim.add_argument(
        "--batch-size", type=number(int, "--batch-size", 1), default=64, help="graphs per fused solve (default 64)"
    )
    sim.add_argument(
        "--checkpoint-every",
        type=number(int, "--checkpoint-every", 1),
        default=100,
        metavar="SAMPLES",
        help="save the new samples into <out stem>.partial/ every this many samples (default 100)",
    )
    sim.add_argument("--resume", action="store_true", help="continue from the checkpoints in <out stem>.partial/")
    sim.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    burgers = sim.add_argument_group("burgers (GNRK datasets I-IV; --method rk4 or euler, --num-steps, --seed)")
    burgers.add_argument("--dataset", choices=("I", "II", "III", "IV"), default="I", help="default I")
    burgers.add_argument("--grid", type=number(int, "--grid", 3), nargs=2, default=[100, 100], metavar=("NX", "NY"))
    burgers.add_argument(
        "--grid-range", type=number(int, "--grid-range", 3), nargs=2, default=[50, 150], metavar=("MIN", "MAX")
    )
    burgers.add_argument("--dt", type=number(float, "--dt"), default=1e-3, help="mean time step (default 1e-3)")
    sim.set_defaults(run=_simulate, parser=sim)


def add_plot(commands) -> None:
    plot = commands.add_parser("plot", help="save a PNG of one sample's node trajectories")
    plot.add_argument("dataset", help="a .npz file written by fastsim simulate")
    plot.add_argument("--sample", type=int, default=0, help="sample index (default 0)")
    plot.add_argument("--out", required=True, help="the PNG file to write")
    plot.add_argument(
        "--max-nodes", type=number(int, "--max-nodes", 1), default=50, help="plot at most this many nodes (default 50)"
    )
    plot.set_defaults(run=_plot, parser=plot)
