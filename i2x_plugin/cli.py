"""The ``i2x`` command line.

Structure: :func:`build_parser` declares one subparser per verb and binds it to a
``_cmd_<verb>(args) -> int`` function through ``set_defaults(func=...)``; :func:`main`
parses and dispatches. Add a verb by adding one ``_add_<verb>`` block and one
``_cmd_<verb>`` function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _cmd_store(args: argparse.Namespace) -> int:
    """``i2x store start|stop|status``: manage the embedded graph server."""
    from i2x_plugin.store import StoreError, store_start, store_status, store_stop

    try:
        if args.action == "start":
            st = store_start(args.data_dir, args.port)
            print(f"store running: {st.uri} (pid {st.pid}, data {st.data_dir})")
        elif args.action == "stop":
            stopped = store_stop(args.data_dir)
            print("store stopped" if stopped else "store was not running")
        else:
            st = store_status(args.data_dir)
            print(f"store running: {st.uri} (pid {st.pid}, data {st.data_dir})" if st.running
                  else f"store not running (data {st.data_dir})")
            return 0 if st.running else 3
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _add_store(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("store", help="start, stop or inspect the embedded graph server")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--data-dir", default=None,
                   help="store directory (default: $I2X_STORE_DIR or the user data dir)")
    p.add_argument("--port", type=int, default=None,
                   help="Bolt port for 'start' (default: a free one)")
    p.set_defaults(func=_cmd_store)


def _cmd_run(args: argparse.Namespace) -> int:
    """``i2x run``: the main job (train or load checkpoints, explain, graph, report, answers)."""
    import json

    from pydantic import ValidationError

    from i2x_plugin.run import RunConfig, RunError, format_validation_error, run_main
    from i2x_plugin.store import StoreError

    source = "command line"
    try:
        config = RunConfig()
        if args.config:
            source = f"config file {args.config}"
            config = RunConfig.from_file(args.config)
        source = "command line"
        config = config.updated(
            dataset=args.dataset, model=args.model, layer=args.layer, checkpoints=args.checkpoints,
            adapter=args.adapter, method=args.method, k=args.k, store=args.store, store_dir=args.store_dir,
            device=args.device, out=args.out, run_id=args.run_id, seed=args.seed, epochs=args.epochs,
            probe_size=args.probe_size, report=False if args.no_report else None)
        result = run_main(config, progress=not args.quiet and args.format == "text")
    except ValidationError as e:
        print(f"error: invalid settings in the {source}:\n{format_validation_error(e)}", file=sys.stderr)
        return 2
    except (RunError, StoreError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the run was stopped; it is not marked complete in the graph and a new "
              "'i2x run' starts afresh.", file=sys.stderr)
        return 130
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=1, default=str))
    elif args.quiet:
        print(result.directory)
    else:
        print(result.summary_text())
    return 0


def _add_run(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="the main job: train (or load checkpoints), explain, fill the graph, "
                       "write the report, answer three questions",
                       description="With no options: 5,000 real MNIST digits, a small CNN, the embedded graph "
                       "store, all offline. Options override the --config file, which overrides the defaults.")
    p.add_argument("--config", metavar="FILE", help="RunConfig as YAML or JSON (see docs/method.md)")
    p.add_argument("--dataset", help="digits | mnist-5k (default) | fashion-mnist | mnist | cifar10 | "
                   "an ImageFolder directory")
    p.add_argument("--model", help="small-cnn (default) | resnet18 | module:factory")
    p.add_argument("--layer", help="feature layer to explain (default: the model's own choice)")
    p.add_argument("--checkpoints", metavar="DIR", help="explain these checkpoints instead of training")
    p.add_argument("--adapter", choices=["captum", "gradcam"], help="saliency library (default captum)")
    p.add_argument("--method", help="attribution class, e.g. LayerGradCam, GradCAMPlusPlus")
    p.add_argument("--k", type=int, help="number of prototypes K (default 32)")
    p.add_argument("--store", help="embedded (default) | bolt://... or neo4j://... URI (NEO4J_* auth) | env | none")
    p.add_argument("--store-dir", help="data directory of the embedded store")
    p.add_argument("--device", help="cpu (default) | cuda | cuda:N | mps")
    p.add_argument("--out", help="output folder (default ./i2x-out); the run writes to OUT/RUN_ID/")
    p.add_argument("--run-id", help="run id (default: time stamp + random suffix)")
    p.add_argument("--seed", type=int, help="seed of everything: split, probe subset, initial weights, training, "
                   "PCA/K-Means (default 0)")
    p.add_argument("--epochs", type=int, help="training epochs (default 8)")
    p.add_argument("--probe-size", type=int, help="at most this many training samples are explained (default 5000)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--quiet", action="store_true", help="no progress bars; print only the output directory")
    p.add_argument("--format", choices=["text", "json"], default="text", help="result as text (default) or JSON")
    p.set_defaults(func=_cmd_run)


def build_parser() -> argparse.ArgumentParser:
    """The full ``i2x`` parser, one subparser per verb."""
    parser = argparse.ArgumentParser(prog="i2x", description="I2X explanations for image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_store(sub)
    _add_run(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the chosen verb; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
