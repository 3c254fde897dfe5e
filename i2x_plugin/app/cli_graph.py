"""The ``i2x`` verbs that use the graph: ``store`` (the embedded server and its Browser bridge), ``ask``,
``cypher`` and ``view``."""

from __future__ import annotations

import argparse
import sys

KEEP_STORE_HELP = ("keep the embedded store running afterwards (default: a store this command started is "
                   "stopped when it ends; i2x store start also keeps it)")


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
            bridge = bridge_status(args.data_dir)
            if bridge is not None:  # it outlives the store, waiting for the next one
                print(f"Browser bridge: {bridge.connect_url} (ws://{bridge.host}:{bridge.port}, pid {bridge.pid}); "
                      f"guide: {bridge.play_command}")
            return 0 if st.running else 3
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def add_store(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


def _failed(error: Exception) -> int:
    """Print the error; exit code 1 when the store failed, 2 when the request was wrong (bad question, parameter
    or a write sent to the read-only ``cypher``)."""
    from i2x_plugin.store import ReadOnlyQueryError, StoreError

    print(f"error: {error}", file=sys.stderr)
    return 1 if isinstance(error, StoreError) and not isinstance(error, ReadOnlyQueryError) else 2


def _graph_store(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The store named by ``--store`` / ``--store-dir`` (ask, cypher, view)."""
    from i2x_plugin.store import GraphStore

    return GraphStore.connect(args.store, args.store_dir, keep=args.keep_store)


def _key_values(pairs: list[str] | None, flag: str = "--param") -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {pair!r} is not NAME=VALUE (e.g. {flag} cls=3).")
        out[key.strip()] = value
    return out


def add_graph_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default="embedded",
                   help="embedded (default) | bolt://... or neo4j://... URI (NEO4J_* auth) | env")
    p.add_argument("--store-dir", default=None, help="data directory of the embedded store")
    p.add_argument("--keep-store", action="store_true", help=KEEP_STORE_HELP)


def _cmd_ask(args: argparse.Namespace) -> int:
    """``i2x ask NAME --param k=v [--run RUN_ID]`` / ``i2x ask --list``: the question catalog."""
    import json

    from i2x_plugin.graph.questions import QuestionError, ask, list_questions
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
    except (QuestionError, ValueError, StoreError) as e:
        return _failed(e)
    print(answer.to_json() if args.format == "json" else answer.to_table())
    return 0


def _add_question_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="a question parameter (repeatable)")
    p.add_argument("--run", default=None, help="run id (default: the latest complete run)")


def add_ask(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ask", help="answer a 'why' question of the catalog from the graph (i2x ask --list)")
    p.add_argument("name", nargs="?", help="question name (see --list)")
    _add_question_options(p)
    p.add_argument("--list", action="store_true", help="list the questions, their parameters and docstrings")
    p.add_argument("--format", choices=["table", "json"], default="table")
    add_graph_options(p)
    p.set_defaults(func=_cmd_ask)


def _cmd_cypher(args: argparse.Namespace) -> int:
    """``i2x cypher "..."``: read-only ad-hoc Cypher; writes are refused and change nothing."""
    import json

    from i2x_plugin.graph.questions import format_table
    from i2x_plugin.store import StoreError

    try:
        params = {}
        for key, text in _key_values(args.param).items():
            try:
                params[key] = json.loads(text)
            except ValueError:
                params[key] = text
        with _graph_store(args) as store:
            records = store.query(args.statement, **params)
    except (ValueError, StoreError) as e:
        return _failed(e)
    if args.format == "json":
        print(json.dumps(records, indent=1, default=str))
    elif records:
        print(format_table(list(records[0]), records))
    else:
        print("(no rows)")
    return 0


def add_cypher(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cypher", help="run read-only ad-hoc Cypher on the graph (writes are refused)")
    p.add_argument("statement", help='a Cypher statement, e.g. "MATCH (r:Run) RETURN r.runId, r.status"')
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a $parameter; VALUE is parsed as JSON if it can be, else taken as text (repeatable)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    add_graph_options(p)
    p.set_defaults(func=_cmd_cypher)


def _cmd_view(args: argparse.Namespace) -> int:
    """``i2x view QUESTION --param k=v --out FILE`` or ``i2x view --run RUN_ID --out FILE``."""
    from i2x_plugin.graph.questions import QuestionError, ask, resolve_run
    from i2x_plugin.store import StoreError
    from i2x_plugin.graph.view import view_answer, view_run

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
    except (QuestionError, ValueError, StoreError) as e:
        return _failed(e)
    print(f"wrote {path} (opens offline in a browser)")
    return 0


def add_view(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("view", help="an offline HTML graph view of a question's answer or of a whole run")
    p.add_argument("question", nargs="?", help="a catalog question (omit to view the whole run)")
    _add_question_options(p)
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--all-relationships", action="store_true",
                   help="whole run: keep the DRIVES edges (β of every prototype toward every class)")
    add_graph_options(p)
    p.set_defaults(func=_cmd_view)
