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


def build_parser() -> argparse.ArgumentParser:
    """The full ``i2x`` parser, one subparser per verb."""
    parser = argparse.ArgumentParser(prog="i2x", description="I2X explanations for image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_store(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the chosen verb; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
