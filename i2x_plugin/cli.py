"""The ``i2x`` command line.

Structure: :func:`build_parser` declares one subparser per verb and binds it to a
``_cmd_<verb>(args) -> int`` function through ``set_defaults(func=...)``; :func:`main`
parses and dispatches. Add a verb by adding one ``_add_<verb>`` block and one
``_cmd_<verb>`` function.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def _store_line(st) -> str:  # type: ignore[no-untyped-def]
    if not st.running:
        return f"store not running (data {st.data_dir})"
    lifetime = ("kept: runs until i2x store stop" if st.kept
                else "started for a command or bridge: stops when the last one ends")
    return f"store running: {st.uri} (pid {st.pid}, data {st.data_dir}; {lifetime})"


def _cmd_store(args: argparse.Namespace) -> int:
    """``i2x store start|stop|status|browser``: manage the embedded graph server and its Browser bridge."""
    from i2x_plugin.store import StoreError, store_start, store_status
    from i2x_plugin.store.bridge import bridge_status, connect_details, start_bridge, stop_store

    try:
        if args.action == "start":
            print(_store_line(store_start(args.data_dir, args.port)))
        elif args.action == "stop":
            bridge_stopped, stopped = stop_store(args.data_dir)
            print(("bridge stopped; " if bridge_stopped else "")
                  + ("store stopped" if stopped else "store was not running"))
        elif args.action == "browser":
            bridge = start_bridge(args.data_dir, args.port, args.host)
            if bridge.reused:
                print(f"A bridge for this store is already running (pid {bridge.pid}); it is reused.")
            if args.admin:
                print("warning: this is the login of root, the store's administrator: anything typed into Browser "
                      "can change or delete the graph. Omit --admin to log in read-only.", file=sys.stderr)
            print(connect_details(bridge, admin=args.admin))
        else:
            st = store_status(args.data_dir)
            print(_store_line(st))
            bridge = bridge_status(args.data_dir) if st.running else None
            if bridge is not None:
                print(f"Browser bridge: {bridge.connect_url} (ws://{bridge.host}:{bridge.port}, pid {bridge.pid})")
            return 0 if st.running else 3
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _add_store(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("store", help="start, stop or inspect the embedded graph server; open it to Neo4j Browser",
                       description="start: run the server until 'i2x store stop' (commands otherwise stop a server "
                       "they started). browser: a loopback WebSocket bridge for Neo4j Browser, and what to type into "
                       "its connect form. stop: the bridge and the server. status: both.")
    p.add_argument("action", choices=["start", "stop", "status", "browser"])
    p.add_argument("--data-dir", default=None,
                   help="store directory (default: $I2X_STORE_DIR or the user data dir)")
    p.add_argument("--port", type=int, default=None,
                   help="start: the Bolt port; browser: the bridge's port, the one Browser connects to "
                   "(default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="browser: a loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--admin", action="store_true",
                   help="browser: print the administrator's login instead of the read-only one (with a warning)")
    p.set_defaults(func=_cmd_store)


_KEEP_STORE_HELP = ("keep the embedded store running afterwards (default: a store this command started is "
                    "stopped when it ends; i2x store start also keeps it)")


def _cmd_run(args: argparse.Namespace) -> int:
    """``i2x run``: the main job (train or load checkpoints, explain, graph, report, answers)."""
    import json

    from pydantic import ValidationError

    from i2x_plugin.distributed import DistributedError, launch
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
    except (RunError, StoreError, DistributedError, ValueError, FileNotFoundError) as e:
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
    p.add_argument("--model", help="small-cnn (default) | resnet18 | module:factory")
    p.add_argument("--layer", help="feature layer to explain (default: the model's own choice)")
    p.add_argument("--checkpoints", metavar="DIR", help="explain these checkpoints instead of training")
    p.add_argument("--adapter", choices=["captum", "gradcam"], help="saliency library (default captum)")
    p.add_argument("--method", help="attribution class, e.g. LayerGradCam, GradCAMPlusPlus")
    p.add_argument("--k", type=int, help="number of prototypes K (default 32)")
    p.add_argument("--store", help="embedded (default) | bolt://... or neo4j://... URI (NEO4J_* auth) | env | none")
    p.add_argument("--store-dir", help="data directory of the embedded store")
    p.add_argument("--keep-store", action="store_true", help=_KEEP_STORE_HELP)
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


def _cmd_improve(args: argparse.Namespace) -> int:
    """``i2x improve``: step 9, targeted fine-tuning (curated->full vs full->full) on a saved run."""
    import json
    from pathlib import Path

    from pydantic import ValidationError

    from i2x_plugin.atomic import write_text
    from i2x_plugin.curation import CurationError
    from i2x_plugin.improve import ImproveConfig, ImproveError, improve, inputs_from_files, inputs_from_run

    try:
        config = ImproveConfig.from_file(args.config) if args.config else ImproveConfig()
        changes = {"seeds": args.seeds, "lr": args.lr, "batch_size": args.batch_size,
                   "num_prototypes": args.num_prototypes, "pair_selection": args.pair_selection,
                   "pair": tuple(args.pair) if args.pair else None, "variant": args.variant, "cap": args.cap,
                   "optimizer_state": args.optimizer_state, "min_positions": args.min_positions}
        config = ImproveConfig.model_validate({**config.model_dump(), **{k: v for k, v in changes.items()
                                                                         if v is not None}})
        if args.run_dir:
            inputs = inputs_from_run(args.run_dir, args.checkpoint)
        elif args.explanation and args.dataset and args.model:
            inputs = inputs_from_files(args.explanation, args.checkpoint, args.dataset, args.model)
        else:
            print("error: give --run-dir DIR (an 'i2x run' output), or --explanation DIR --dataset NAME --model NAME "
                  "[--checkpoint FILE]", file=sys.stderr)
            return 2
        out = Path(args.out) if args.out else (Path(args.run_dir) / "improve" if args.run_dir
                                               else Path("i2x-out") / f"improve-{inputs.explanation.run_id}")
        result, curation = improve(inputs.explanation, inputs.model, inputs.train, inputs.test, config,
                                   checkpoint=inputs.checkpoint, device=args.device, train_ids=inputs.train_ids,
                                   save_dir=None if args.no_save_checkpoints else out / "finetuned",
                                   progress=not args.quiet and args.format == "text")
    except ValidationError as e:
        print(f"error: invalid improve settings:\n{e}", file=sys.stderr)
        return 2
    except (CurationError, ImproveError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result.save_json(out / "improve.json")
    write_text(out / "improve.md", result.to_markdown())
    write_text(out / "improve.html", result.to_html())
    report = Path(args.run_dir) / "report" / "index.html" if args.run_dir else None
    if report is not None and report.is_file():
        from i2x_plugin.report import add_report_section

        add_report_section(report, "Targeted fine-tuning (i2x improve)", result.to_html(), "improve")
    graph_note = ""
    store_target = args.store or inputs.store or "embedded"
    if store_target != "none":
        from i2x_plugin.store import StoreError

        try:
            graph_note = _improve_to_graph(store_target, args.store_dir or inputs.store_dir, result, curation,
                                           inputs.explanation, args.keep_store)
        except (StoreError, ValueError) as e:
            print(f"warning: the table is written but the graph was not updated: {e}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(result.format_table())
        print(f"\nwritten: {out / 'improve.json'}, improve.md, improve.html"
              + ("" if args.no_save_checkpoints else f", {len(result.runs)} fine-tuned checkpoints in {out / 'finetuned'}")
              + (f"\nreport section added to {report}" if report is not None and report.is_file() else "")
              + (f"\n{graph_note}" if graph_note else ""))
    return 0


def _improve_to_graph(target: str, store_dir, result, curation, explanation, keep_store: bool) -> str:
    """Write the CurationSet and the fine-tuned checkpoints of ``result`` to the graph; returns a one-line note."""
    from i2x_plugin.improve_graph import write_improvement
    from i2x_plugin.store import GraphStore

    store = (GraphStore.embedded(store_dir, keep=keep_store) if target == "embedded"
             else GraphStore.connect(target))
    try:
        counts = write_improvement(store, explanation, curation, result)
    finally:
        store.close()
    return (f"graph ({store.uri}): CurationSet {counts['curation_set']!r} removing {counts['removed']} training "
            f"samples, {counts['checkpoints']} fine-tuned checkpoints (FINE_TUNED_FROM the final one)")


def _lr(value: str) -> float | str:
    if value == "base":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a learning rate or 'base'") from None


def _positions_or_auto(value: str) -> int | str:
    if value == "auto" or (value.isdigit() and int(value) >= 1):
        return value if value == "auto" else int(value)
    raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of positions or 'auto'")


def _add_improve(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from i2x_plugin.selection import DEFAULT_VARIANT, VARIANTS

    p = sub.add_parser("improve", help="targeted fine-tuning: does removing samples with uncertain prototypes "
                       "for one epoch reduce the confusion more than removing random ones? (the paper's table)",
                       description="From the run's final checkpoint: 1 epoch on the full or curated training set, "
                       "and full->full, curated->curated, curated->full and random->full (as many samples of the same "
                       "classes removed at random), over several seeds; test accuracy and the targeted pair's "
                       "confusions, mean ± std, and paired tests of curated->full vs random->full and full->full.")
    p.add_argument("--run-dir", metavar="DIR", help="an 'i2x run' output directory (OUT/RUN_ID)")
    p.add_argument("--explanation", metavar="DIR", help="without --run-dir: a saved StructuredExplanation")
    p.add_argument("--checkpoint", metavar="FILE", help="the checkpoint to fine-tune (default: the run's final one)")
    p.add_argument("--dataset", help="without --run-dir: the data set (split as 'i2x run' splits it)")
    p.add_argument("--model", help="without --run-dir: small-cnn | resnet18 | module:factory")
    p.add_argument("--config", metavar="FILE", help="ImproveConfig as YAML or JSON; options below override it")
    p.add_argument("--seeds", type=int, help="fine-tuning seeds (default 5)")
    p.add_argument("--variant", choices=list(VARIANTS), help="which samples the curated epoch leaves out (default "
                   f"{DEFAULT_VARIANT}): " + "; ".join(f"{k}: {v}" for k, v in VARIANTS.items()))
    p.add_argument("--cap", type=float, help="V1–V4: at most this fraction of each class is removed (default 0.1)")
    p.add_argument("--lr", type=_lr, help="learning rate of every schedule: a number, or 'base' (default): the one "
                   "recorded with the checkpoint (the training's final learning rate)")
    p.add_argument("--optimizer-state", choices=["carry", "fresh"], help="carry (default): continue from the "
                   "optimiser state saved with the checkpoint; fresh: a new Adam")
    p.add_argument("--batch-size", type=int, help="batch size of every schedule (default 64)")
    p.add_argument("--pair", type=int, nargs=2, metavar=("A", "B"), help="target this class pair")
    p.add_argument("--pair-selection", choices=["most_confused", "top_uncertain"],
                   help="how to choose the pair when --pair is not given (default most_confused)")
    p.add_argument("--num-prototypes", type=int, help="V0: uncertain prototypes of the pair to use (default 1)")
    p.add_argument("--min-positions", type=_positions_or_auto, help="V0: a sample contains a prototype at ≥ this "
                   "many positions (default 1, the paper's), or 'auto'")
    p.add_argument("--device", help="cpu (default: where the model is) | cuda | mps")
    p.add_argument("--out", metavar="DIR", help="output folder (default RUN_DIR/improve)")
    p.add_argument("--store", help="graph store: embedded | bolt://... | env | none (default: the run's)")
    p.add_argument("--store-dir", help="data directory of the embedded store (default: the run's)")
    p.add_argument("--keep-store", action="store_true", help=_KEEP_STORE_HELP)
    p.add_argument("--no-save-checkpoints", action="store_true", help="do not save the fine-tuned models")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--format", choices=["text", "json"], default="text", help="print the table or the JSON")
    p.set_defaults(func=_cmd_improve)


def _graph_store(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The store named by ``--store`` / ``--store-dir`` (ask, cypher, view)."""
    from i2x_plugin.store import GraphStore

    return (GraphStore.embedded(args.store_dir, keep=args.keep_store) if args.store == "embedded"
            else GraphStore.connect(args.store))


def _key_values(pairs: list[str] | None, flag: str = "--param") -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {pair!r} is not NAME=VALUE (e.g. {flag} cls=3).")
        out[key.strip()] = value
    return out


def _add_graph_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default="embedded",
                   help="embedded (default) | bolt://... or neo4j://... URI (NEO4J_* auth) | env")
    p.add_argument("--store-dir", default=None, help="data directory of the embedded store")
    p.add_argument("--keep-store", action="store_true", help=_KEEP_STORE_HELP)


def _cmd_ask(args: argparse.Namespace) -> int:
    """``i2x ask NAME --param k=v [--run RUN_ID]`` / ``i2x ask --list``: the question catalog."""
    import json

    from i2x_plugin.questions import QuestionError, ask, list_questions
    from i2x_plugin.store import StoreError

    if args.list:
        questions = list_questions()
        if args.format == "json":
            print(json.dumps(questions, indent=1))
        else:
            for q in questions:
                params = ", ".join(f"{p['name']}:{p['type']}" + ("" if p["required"] else
                                   "?" if p["default"] is None else f"={p['default']}") for p in q["params"])
                print(f"{q['number']:>2}. {q['name']}({params})\n    {q['doc']}")
        return 0
    if not args.name:
        print("error: name a question (i2x ask NAME --param k=v), or list them with i2x ask --list",
              file=sys.stderr)
        return 2
    try:
        params = _key_values(args.param)
        with _graph_store(args) as store:
            answer = ask(store, args.name, args.run, from_text=True, **params)
    except (QuestionError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(answer.to_json() if args.format == "json" else answer.to_table())
    return 0


def _add_ask(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ask", help="answer a 'why' question of the catalog from the graph (i2x ask --list)")
    p.add_argument("name", nargs="?", help="question name (see --list)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="a question parameter (repeatable)")
    p.add_argument("--run", default=None, help="run id (default: the latest complete run)")
    p.add_argument("--list", action="store_true", help="list the questions, their parameters and docstrings")
    p.add_argument("--format", choices=["table", "json"], default="table")
    _add_graph_options(p)
    p.set_defaults(func=_cmd_ask)


def _cmd_cypher(args: argparse.Namespace) -> int:
    """``i2x cypher "..."``: read-only ad-hoc Cypher; writes are refused and change nothing."""
    import json

    from i2x_plugin.questions import format_table
    from i2x_plugin.store import ReadOnlyQueryError, StoreError

    try:
        params = {}
        for key, text in _key_values(args.param).items():
            try:
                params[key] = json.loads(text)
            except ValueError:
                params[key] = text
        with _graph_store(args) as store:
            records = store.query(args.statement, **params)
    except ReadOnlyQueryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(records, indent=1, default=str))
    elif records:
        print(format_table(list(records[0]), records))
    else:
        print("(no rows)")
    return 0


def _add_cypher(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cypher", help="run read-only ad-hoc Cypher on the graph (writes are refused)")
    p.add_argument("statement", help='a Cypher statement, e.g. "MATCH (r:Run) RETURN r.runId, r.status"')
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a $parameter; VALUE is parsed as JSON if it can be, else taken as text (repeatable)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    _add_graph_options(p)
    p.set_defaults(func=_cmd_cypher)


def _cmd_view(args: argparse.Namespace) -> int:
    """``i2x view QUESTION --param k=v --out FILE`` or ``i2x view --run RUN_ID --out FILE``."""
    from i2x_plugin.questions import QuestionError, ask, resolve_run
    from i2x_plugin.store import StoreError
    from i2x_plugin.view import view_answer, view_run

    try:
        params = _key_values(args.param)
        with _graph_store(args) as store:
            if args.question:
                answer = ask(store, args.question, args.run, from_text=True, **params)
                path = view_answer(store, answer, args.out)
            else:
                if params:
                    raise ValueError("--param needs a QUESTION; for a whole run give only --run RUN_ID.")
                run, hint = resolve_run(store, args.run)
                if run is None:
                    raise ValueError(hint)
                path = view_run(store, run["runId"], args.out, all_relationships=args.all_relationships)
    except (QuestionError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path} (opens offline in a browser)")
    return 0


def _add_view(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("view", help="an offline HTML graph view of a question's answer or of a whole run")
    p.add_argument("question", nargs="?", help="a catalog question (omit to view the whole run)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="a question parameter (repeatable)")
    p.add_argument("--run", default=None, help="run id (default: the latest complete run)")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--all-relationships", action="store_true",
                   help="whole run: keep the DRIVES edges (β of every prototype toward every class)")
    _add_graph_options(p)
    p.set_defaults(func=_cmd_view)


def _cmd_stability(args: argparse.Namespace) -> int:
    """``i2x stability``: re-fit a saved run's prototypes, re-derive its claims, record how often each recurs."""
    from i2x_plugin.saved_run import SavedRunError, load_saved_run
    from i2x_plugin.stability import StabilityError, update_saved_run

    try:
        run = load_saved_run(args.run_dir)
        explanation = run.explanation.stability_test(run.model, run.probe, args.device, args.kmeans_seeds,
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
    _add_graph_options(p)
    p.set_defaults(func=_cmd_stability)


def build_parser() -> argparse.ArgumentParser:
    """The full ``i2x`` parser, one subparser per verb."""
    parser = argparse.ArgumentParser(prog="i2x", description="I2X explanations for image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_store(sub)
    _add_run(sub)
    _add_improve(sub)
    _add_ask(sub)
    _add_cypher(sub)
    _add_view(sub)
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
