"""``i2x improve``: targeted fine-tuning of a finished run, against random removal and full→full."""

from __future__ import annotations

import argparse
import sys

from .cli_graph import KEEP_STORE_HELP


def _cmd_improve(args: argparse.Namespace) -> int:
    """``i2x improve``: step 9, targeted fine-tuning (curated->full vs full->full) on a saved run."""
    import json
    from pathlib import Path

    from pydantic import ValidationError

    from i2x_plugin.atomic import write_text
    from i2x_plugin.improve.curation import CurationError
    from i2x_plugin.improve.study import ImproveConfig, ImproveError, improve, inputs_from_files, inputs_from_run

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
    from i2x_plugin.improve.graph import write_improvement
    from i2x_plugin.store import GraphStore

    store = GraphStore.connect(target, store_dir, keep=keep_store)
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


def add_improve(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from i2x_plugin.improve.selection import DEFAULT_VARIANT, VARIANTS

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
    p.add_argument("--keep-store", action="store_true", help=KEEP_STORE_HELP)
    p.add_argument("--no-save-checkpoints", action="store_true", help="do not save the fine-tuned models")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--format", choices=["text", "json"], default="text", help="print the table or the JSON")
    p.set_defaults(func=_cmd_improve)
