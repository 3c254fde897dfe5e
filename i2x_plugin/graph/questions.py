"""Asking the explanation graph the "why" questions of the catalog.

``ask(store, "class_drivers", cls=3)`` validates the parameters against the question's declaration,
runs its Cypher (values as parameters, READ routing) on one run — ``run_id`` or, by default, the
most recently written complete run — and returns an :class:`Answer` of typed rows. An empty answer
carries a ``hint`` saying why (a class, prototype, step, sample or run that does not exist; or what
an empty answer means for that question) instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from i2x_plugin.graph_schema.catalog import (
    Question,
    QuestionError,
    QuestionParameterError,
    UnknownQuestionError,
    get_question,
    list_questions,
)

if TYPE_CHECKING:
    from i2x_plugin.store.graph import GraphStore

__all__ = ["Answer", "QuestionError", "QuestionParameterError", "UnknownQuestionError", "ask", "format_table",
           "list_questions", "resolve_run"]


@dataclass(frozen=True)
class Answer(Sequence[BaseModel]):
    """The typed rows answering one question on one run, and a hint when there are none."""

    question: Question
    run_id: str | None
    params: dict[str, Any]
    rows: list[BaseModel]
    hint: str | None = None
    columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return self.rows[i]

    def __iter__(self) -> Iterator[BaseModel]:
        return iter(self.rows)

    def to_dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by the Cypher column names."""
        return [r.model_dump(by_alias=True) for r in self.rows]

    def to_json(self) -> str:
        return json.dumps({"question": self.question.name, "runId": self.run_id, "params": self.params,
                           "rows": self.to_dicts(), "hint": self.hint}, indent=1)

    def to_table(self, max_width: int = 60) -> str:
        """A plain-text table (what ``i2x ask --format table`` prints)."""
        head = f"{self.question.name} — {self.question.doc}\nrun: {self.run_id}"
        if self.params:
            head += "  " + "  ".join(f"{k}={v}" for k, v in self.params.items() if v is not None)
        if not self.rows:
            return f"{head}\n(no rows) {self.hint or ''}".rstrip()
        tail = f"\n{self.hint}" if self.hint else ""
        return f"{head}\n{format_table(self.columns, self.to_dicts(), max_width)}{tail}"


def format_table(columns: list[str], rows: list[dict[str, Any]], max_width: int = 60) -> str:
    """Rows as an aligned plain-text table (floats to 4 significant digits, long cells cut)."""

    def cell(v: Any) -> str:
        text = f"{v:.4g}" if isinstance(v, float) else json.dumps(v, default=str) if isinstance(v, (list, dict)) \
            else str(v)
        return text if len(text) <= max_width else text[:max_width - 1] + "…"

    table = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# The statements this module sends besides the catalog's (checked by tools/cypher-lint).
RUNS_CYPHER = ("MATCH (r:Run) RETURN r.runId AS runId, r.status AS status, r.numClasses AS numClasses, r.k AS k, "
               "r.numCheckpoints AS numCheckpoints ORDER BY r.updatedAt DESC, r.runId")
SAMPLE_CYPHER = "MATCH (s:Sample {runId: $runId, key: $key}) RETURN s.key AS key"
SOME_SAMPLES_CYPHER = ("MATCH (s:Sample {runId: $runId, split: 'probe'}) RETURN s.sampleId AS id ORDER BY id "
                       "LIMIT 10")


def _runs(store: GraphStore) -> list[dict[str, Any]]:
    return store.read(RUNS_CYPHER)


def _describe(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['runId']} ({r['status']})" for r in runs) or "none"


def resolve_run(store: GraphStore, run_id: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The Run asked about (``run_id``, else the latest complete run) and a hint if there is none."""
    runs = _runs(store)
    if run_id is None:
        complete = [r for r in runs if r["status"] == "complete"]
        if complete:
            return complete[0], None
        return None, (f"The graph holds no complete run (runs: {_describe(runs)}). Write one with "
                      "write_explanation(store, explanation) or `i2x run`, or name a run with --run RUN_ID.")
    found = next((r for r in runs if r["runId"] == run_id), None)
    if found is None:
        return None, f"Run {run_id!r} is not in the graph. Runs: {_describe(runs)}; pick one with --run RUN_ID."
    if found["status"] != "complete":
        return found, (f"Run {run_id!r} has status {found['status']!r}: its graph is incomplete. "
                       "Write the run again (write_explanation) to complete it.")
    return found, None


_CLASS_PARAMS, _PROTOTYPE_PARAMS = ("cls", "a", "b"), ("k",)


def _empty_hint(store: GraphStore, q: Question, run: dict[str, Any], params: dict[str, Any]) -> str:
    """Why an answer is empty: a parameter naming something that does not exist, else the question's note."""
    rid = run["runId"]
    for name in _CLASS_PARAMS:
        v = params.get(name)
        if v is not None and not 0 <= v < run["numClasses"]:
            return (f"Class {v} does not exist in run {rid!r}: {name} must be a class index "
                    f"0..{run['numClasses'] - 1}.")
    for name in _PROTOTYPE_PARAMS:
        v = params.get(name)
        if v is not None and not 0 <= v < run["k"]:
            return f"Prototype {v} does not exist in run {rid!r}: k must be 0..{run['k'] - 1}."
    step = params.get("step")
    if step is not None and not 0 <= step < run["numCheckpoints"] - 1:
        return (f"Step {step} does not exist in run {rid!r}: steps are 0..{run['numCheckpoints'] - 2} "
                "(step t = checkpoint t → t+1).")
    if params.get("a") is not None and params.get("a") == params.get("b"):
        return "a and b are the same class; name two different classes."
    sample = params.get("sample")
    if sample is not None and not store.read(SAMPLE_CYPHER, runId=rid, key=f"probe:{sample}"):
        some = [r["id"] for r in store.read(SOME_SAMPLES_CYPHER, runId=rid)]
        return (f"Sample {sample} is not stored in run {rid!r} (the graph keeps exemplars, samples misclassified "
                f"at the final checkpoint and uncertain-pair samples). Stored samples include {some}.")
    if "other" in params:
        others = [r for r in _runs(store) if r["runId"] != rid and r["status"] == "complete"]
        if params["other"] is not None and params["other"] not in [r["runId"] for r in others]:
            return (f"Run {params['other']!r} is not a complete run in the graph; complete runs besides {rid!r}: "
                    f"{[r['runId'] for r in others] or 'none'}.")
        if not others:
            return (f"{q.name} compares two runs, but the graph holds no complete run besides {rid!r}. Write a "
                    "second one (another seed or data order) first.")
    return q.empty or "No rows."


def ask(store: GraphStore, name: str, run_id: str | None = None, *, from_text: bool = False, **params: Any) -> Answer:
    """Answer catalog question ``name`` (``i2x ask --list``) on run ``run_id`` (default: the latest complete run).

    >>> ask(store, "class_drivers", cls=3).to_table()

    ``params`` are the question's declared parameters; ``from_text`` parses string values by the
    declared types (the CLI's ``--param k=v``).
    Raises :class:`UnknownQuestionError` / :class:`QuestionParameterError` for bad input; a class,
    prototype, sample or run that does not exist gives an empty answer with a hint.
    """
    q = get_question(name)
    bound = q.bind(params, from_text=from_text)
    columns = [c.name for c in q.returns]
    run, hint = resolve_run(store, run_id)
    if run is None:
        return Answer(q, run_id, bound, [], hint, columns)
    records = store.read(q.cypher, runId=run["runId"], **bound)
    model = q.row_model
    rows = [model.model_validate(r) for r in records]
    if not rows:
        hint = (hint + " " if hint else "") + _empty_hint(store, q, run, bound)
    return Answer(q, run["runId"], bound, rows, hint, columns)
