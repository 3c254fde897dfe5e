"""The ``i2x`` command line.

Structure: :func:`build_parser` declares one subparser per verb and binds it to a
``_cmd_<verb>(args) -> int`` function through ``set_defaults(func=...)``; :func:`main`
parses and dispatches. Add a verb by adding one ``add_<verb>`` parser block and one
``_cmd_<verb>`` function. The graph's verbs (store, ask, cypher, view) live in
:mod:`~i2x_plugin.app.cli_graph`, ``improve`` in :mod:`~i2x_plugin.app.cli_improve`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .cli_graph import KEEP_STORE_HELP, add_ask, add_cypher, add_graph_options, add_store, add_view
from .cli_improve import add_improve


def _cmd_run(args: argparse.Namespace) -> int:
    """``i2x run``: the main job (train or load checkpoints, explain, graph, report, answers)."""
    import json

    from pydantic import ValidationError

    from i2x_plugin.method.distributed import DistributedError, launch
    from i2x_plugin.app.run import RunConfig, RunError, format_validation_error, run_main
    from i2x_plugin.store import StoreError
    from i2x_plugin.training.shortcut import ShortcutError, parse_shortcut

    source = "command line"
    try:
        config = RunConfig()
        if args.config:
            source = f"config file {args.config}"
            config = RunConfig.from_file(args.config)
        source = "command line"
        shortcut = parse_shortcut(args.shortcut) if args.shortcut else None
        config = config.updated(
            shortcut=shortcut, dataset=args.dataset, model=args.model, layer=args.layer, checkpoints=args.checkpoints,
            adapter=args.adapter, method=args.method, k=args.k, store=args.store, store_dir=args.store_dir,
            device=args.device, out=args.out, run_id=args.run_id, seed=args.seed, epochs=args.epochs,
            probe_size=args.probe_size, report=False if args.no_report else None,
            stability=False if args.no_stability else None,
            keep_store=True if args.keep_store else None, dist_timeout=args.dist_timeout)
        if args.nproc is not None and args.nproc != 1:
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise DistributedError("--nproc starts torchrun itself; under torchrun leave it out (torchrun's "
                                       "--nproc-per-node sets the processes).")
            return launch(_without_option(args.argv, "--nproc"), args.nproc, config.device)
        result = run_main(config, progress=not args.quiet and args.format == "text")
    except ValidationError as e:
        print(f"error: invalid settings in the {source}:\n{format_validation_error(e)}", file=sys.stderr)
        return 2
    except (RunError, StoreError, DistributedError, ShortcutError, ValueError, FileNotFoundError) as e:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        where = f" (rank {os.environ.get('RANK', '?')} of {world})" if world > 1 else ""
        print(f"error{where}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the run was stopped; it is not marked complete in the graph and a new "
              "'i2x run' starts afresh.", file=sys.stderr)
        return 130
    if result is None:  # a torchrun rank other than 0: rank 0 reports
        return 0
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=1, default=str))
    elif args.quiet:
        print(result.directory)
    else:
        print(result.summary_text())
        if config.store == "embedded" and not config.keep_store:
            from i2x_plugin.store import store_status

            if not store_status(config.store_dir).running:
                print("\nThe embedded graph store was started for this run and is stopped again (the graph stays): "
                      "i2x ask starts it when needed; --keep-store or i2x store start keeps it running.")
    return 0


def _add_run(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="the main job: train (or load checkpoints), explain, fill the graph, "
                       "write the report, answer three questions",
                       description="With no options: 5,000 real MNIST digits, a small CNN, the embedded graph "
                       "store, all offline. Options override the --config file, which overrides the defaults.")
    p.add_argument("--config", metavar="FILE", help="RunConfig as YAML or JSON (see docs/method.md)")
    p.add_argument("--dataset", help="digits | mnist-5k (default) | fashion-mnist | mnist | cifar10 | "
                   "an ImageFolder directory")
    p.add_argument("--shortcut", metavar="SPEC", help="plant a shortcut marker into class a's training images, e.g. "
                   "a=3,b=8,rate=1.0,b_rate=0,shape=square,size=4,row=0,col=0,value=1,seed=0 (options: "
                   "training.shortcut.ShortcutConfig; the held-out confusions it causes are in the summary)")
    p.add_argument("--model", help="small-cnn (default) | resnet18 | module:factory")
    p.add_argument("--layer", help="feature layer to explain (default: the model's own choice)")
    p.add_argument("--checkpoints", metavar="DIR", help="explain these checkpoints instead of training")
    p.add_argument("--adapter", choices=["captum", "gradcam"], help="saliency library (default captum)")
    p.add_argument("--method", help="attribution class, e.g. LayerGradCam, GradCAMPlusPlus")
    p.add_argument("--k", type=int, help="number of prototypes K (default 32)")
    p.add_argument("--store", help="embedded (default) | bolt://... or neo4j://... URI (NEO4J_* auth) | env | none")
    p.add_argument("--store-dir", help="data directory of the embedded store")
    p.add_argument("--keep-store", action="store_true", help=KEEP_STORE_HELP)
    p.add_argument("--device", help="cpu (default) | cuda | cuda:N | mps")
    p.add_argument("--out", help="output folder (default ./i2x-out); the run writes to OUT/RUN_ID/")
    p.add_argument("--run-id", help="run id (default: time stamp + random suffix)")
    p.add_argument("--seed", type=int, help="seed of everything: split, probe subset, initial weights, training, "
                   "PCA/K-Means (default 0)")
    p.add_argument("--epochs", type=int, help="training epochs (default 8)")
    p.add_argument("--probe-size", type=int, help="at most this many training samples are explained (default 5000)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--no-stability", action="store_true",
                   help="skip the stability test (i2x stability --run-dir runs it later)")
    p.add_argument("--nproc", type=int, help="shard the sweep over N processes on this machine (torchrun; one GPU "
                   "each with --device cuda, else CPU cores split between them); across machines run torchrun "
                   "-m i2x_plugin.cli run yourself (README)")
    p.add_argument("--dist-timeout", type=float, help="seconds a process waits for the others before failing "
                   "(default 1800; must cover the training)")
    p.add_argument("--quiet", action="store_true", help="no progress bars; print only the output directory")
    p.add_argument("--format", choices=["text", "json"], default="text", help="result as text (default) or JSON")
    p.set_defaults(func=_cmd_run)


def _cmd_stability(args: argparse.Namespace) -> int:
    """``i2x stability``: re-fit a saved run's prototypes, re-derive its claims, record how often each recurs."""
    from i2x_plugin.runs.saved_run import SavedRunError, load_saved_run
    from i2x_plugin.app.write_back import update_saved_run
    from i2x_plugin.checks.run import run_stability
    from i2x_plugin.checks.stability import StabilityError

    try:
        run = load_saved_run(args.run_dir)
        explanation = run_stability(run.explanation, run.model, run.probe, args.device, args.kmeans_seeds,
                                    args.bootstraps)
        where = update_saved_run(run, explanation, None if args.store == "none" else args.store, args.store_dir,
                                 args.keep_store)
    except (SavedRunError, StabilityError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    s = explanation.stability
    print(f"stability of run {explanation.run_id}: {len(s.refits)} re-fits ({', '.join(s.refits)})")
    for kind, value in s.mean_jaccard.items():
        print(f"  {kind:<11} mean Jaccard {value:.2f}")
    print(f"  learning order: Kendall tau {sum(s.learning_order_tau) / max(len(s.learning_order_tau), 1):.2f}")
    print("updated: " + ", ".join(where))
    return 0


def _add_stability(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("stability", help="re-fit a saved run's prototypes and measure how stable its claims are")
    p.add_argument("--run-dir", required=True, help="OUT/RUN_ID of a finished 'i2x run'")
    p.add_argument("--kmeans-seeds", type=int, default=None, help="re-fits with other K-Means seeds (default: config)")
    p.add_argument("--bootstraps", type=int, default=None, help="re-fits on bootstrap resamples (default: config)")
    p.add_argument("--device", default="cpu")
    add_graph_options(p)
    p.set_defaults(func=_cmd_stability)


def build_parser() -> argparse.ArgumentParser:
    """The full ``i2x`` parser, one subparser per verb."""
    parser = argparse.ArgumentParser(prog="i2x", description="I2X explanations for image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_store(sub)
    _add_run(sub)
    add_improve(sub)
    add_ask(sub)
    add_cypher(sub)
    add_view(sub)
    _add_stability(sub)
    return parser


def _without_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE`` (or an abbreviation argparse accepted)."""
    out, skip = [], False
    for token in argv:
        name = token.split("=", 1)[0]
        if skip:
            skip = False
        elif len(name) > 3 and option.startswith(name):
            skip = "=" not in token
        else:
            out.append(token)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the chosen verb; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
