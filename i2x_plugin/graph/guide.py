"""The I2X guide for Neo4j Browser: a run's catalog questions as a ``:play`` page.

``i2x store browser`` serves it at ``http://localhost:PORT/guide.html`` (see
:mod:`~i2x_plugin.store.browser_http`); in Browser, ``:play`` that URL. The page is Browser's
guide format, an ``<article class="guide">`` whose ``<slide>`` elements become a carousel:

* a first slide that applies the project's style (``:style http://localhost:PORT/i2x.grass``,
  a click), and a second that says how far to trust a claim (q, recurrence, faithfulness), with
  the run's own numbers;
* one slide per catalog question (``graph_schema/queries/``): ``:param`` commands (a click sets
  ``$runId`` and the question's parameters, filled in with an example from this run), the query
  as a runnable block (a click on its play icon runs it), and for some questions the same
  evidence as a graph (nodes and relationships, which Browser draws with the style).

The page is built when Browser asks for it, from the latest complete run in the store, so it
always names the run that is there. Browser removes scripts and ``on*`` attributes from a guide;
this one has neither. Every command and query is a ``<pre class="runnable">`` block: Browser puts a play
icon before it, which runs it in a new frame (a click on the text copies it into the editor instead).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from typing import Any

from i2x_plugin.graph_schema.catalog import Question, load_catalog
from i2x_plugin.store.browser_http import GuideUnavailableError
from i2x_plugin.store.server import DATABASE, EmbeddedServer, StoreError

# The statements the guide sends to pick its examples (checked by tools/cypher-lint). Each returns at most one row.
RUN_CYPHER = ("MATCH (r:Run {status: 'complete'}) WHERE $runId IS NULL OR r.runId = $runId "
              "RETURN r.runId AS runId, r.config AS config, r.dataset AS dataset "
              "ORDER BY r.updatedAt DESC, r.runId LIMIT 1")
DRIVER_EXAMPLE_CYPHER = ("MATCH (p:Prototype {runId: $runId})-[d:KEY_DRIVER_OF]->(c:Class) "
                         "RETURN c.index AS cls, p.index AS k ORDER BY d.rank, d.beta DESC, c.index LIMIT 1")
UNCERTAIN_EXAMPLE_CYPHER = ("MATCH (:Prototype {runId: $runId})-[u:UNCERTAIN_BETWEEN]->(:Class) "
                            "RETURN u.a AS a, u.b AS b ORDER BY u.score DESC, u.a, u.b LIMIT 1")
SEPARATOR_EXAMPLE_CYPHER = ("MATCH (:Prototype {runId: $runId})-[s:SEPARATES]->(:Class) "
                            "RETURN s.a AS a, s.b AS b ORDER BY s.q, s.a, s.b LIMIT 1")
COMMON_EXAMPLE_CYPHER = ("MATCH (ca:Class {runId: $runId})<-[:KEY_DRIVER_OF]-(:Prototype)-[:KEY_DRIVER_OF]->(cb:Class) "
                         "WHERE ca.index < cb.index RETURN ca.index AS a, cb.index AS b ORDER BY a, b LIMIT 1")
SHARED_EXAMPLE_CYPHER = ("MATCH (:Prototype {runId: $runId})-[:SHARED_BY|SPECIALISED_TO]->(c:Class) "
                         "RETURN c.index AS cls ORDER BY cls LIMIT 1")
SAMPLE_EXAMPLE_CYPHER = ("MATCH (s:Sample {runId: $runId, split: 'probe', correct: false}) "
                         "RETURN s.sampleId AS sample ORDER BY sample LIMIT 1")
GROUP_EXAMPLE_CYPHER = ("MATCH (g:Group {runId: $runId}) WHERE g.group >= 0 "
                        "RETURN g.cls AS cls, g.step AS step ORDER BY g.step DESC, g.size DESC, g.cls LIMIT 1")
CLAIM_COUNTS_CYPHER = ("MATCH (:Prototype {runId: $runId})-[c:KEY_DRIVER_OF|SEPARATES|UNCERTAIN_BETWEEN]->(:Class) "
                       "RETURN type(c) AS kind, count(c) AS claims, count(c.recurrence) AS withRecurrence")
DELETION_COUNTS_CYPHER = ("MATCH (t:DeletionTest {runId: $runId}) "
                          "RETURN t.kind AS kind, count(t) AS tests, sum(CASE WHEN t.p <= $alpha THEN 1 ELSE 0 END) AS passed")

_EXAMPLES = {"driver": DRIVER_EXAMPLE_CYPHER, "uncertain": UNCERTAIN_EXAMPLE_CYPHER,
             "separator": SEPARATOR_EXAMPLE_CYPHER, "common": COMMON_EXAMPLE_CYPHER, "shared": SHARED_EXAMPLE_CYPHER,
             "sample": SAMPLE_EXAMPLE_CYPHER, "group": GROUP_EXAMPLE_CYPHER}
# Which example fills a question's class / pair parameters (the others come from "driver" and "sample").
_EXAMPLE_OF = {"shared_prototypes": "shared", "common_prototypes": "common", "pair_separators": "separator",
               "uncertain_prototypes": "uncertain", "most_confused": "uncertain", "learning_groups": "group"}

# The same evidence as a graph, for the questions whose answer is a set of edges (Browser draws these).
_PAIR = "WITH CASE WHEN $a < $b THEN $a ELSE $b END AS lo, CASE WHEN $a < $b THEN $b ELSE $a END AS hi\n"
DRIVERS_GRAPH_CYPHER = ("MATCH (p:Prototype)-[d:KEY_DRIVER_OF]->(c:Class {runId: $runId, index: $cls})\n"
                        "RETURN p, d, c")
SHARED_GRAPH_CYPHER = ("MATCH (p:Prototype)-[s:SHARED_BY|SPECIALISED_TO]->(c:Class {runId: $runId, index: $cls})\n"
                       "RETURN p, s, c")
COMMON_GRAPH_CYPHER = ("MATCH (ca:Class {runId: $runId, index: $a})<-[da:KEY_DRIVER_OF]-(p:Prototype)"
                       "-[db:KEY_DRIVER_OF]->(cb:Class {runId: $runId, index: $b})\nRETURN ca, da, p, db, cb")
SEPARATORS_GRAPH_CYPHER = (_PAIR + "MATCH (p:Prototype)-[s:SEPARATES]->(f:Class {runId: $runId})\n"
                           "WHERE s.a = lo AND s.b = hi\nRETURN p, s, f")
LEARNING_ORDER_GRAPH_CYPHER = ("MATCH (a:Class {runId: $runId})-[s:SEPARATED_FROM]->(b:Class)\n"
                               "WHERE s.order IS NOT NULL\nRETURN a, s, b")
UNCERTAIN_GRAPH_CYPHER = (_PAIR + "MATCH (a:Class {runId: $runId, index: lo})<-[u:UNCERTAIN_BETWEEN]-(p:Prototype)"
                          "-[v:UNCERTAIN_BETWEEN]->(b:Class {runId: $runId, index: hi})\n"
                          "WHERE u.a = lo AND u.b = hi AND v.a = lo AND v.b = hi\nRETURN a, u, p, v, b")
CONFUSED_GRAPH_CYPHER = ("MATCH (x:Class {runId: $runId})-[c:CONFUSED_AS]->(y:Class)\n"
                         "WHERE c.counts[size(c.counts) - 1] > 0\nRETURN x, c, y")
EXEMPLARS_GRAPH_CYPHER = ("MATCH (s:Sample)-[x:EXEMPLAR_OF]->(p:Prototype {runId: $runId, index: $k})\n"
                          "RETURN s, x, p")
SAMPLE_GRAPH_CYPHER = ("MATCH (s:Sample {runId: $runId, key: 'probe:' + toString($sample)})"
                       "-[r:LABELLED_AS|PREDICTED_AS]->(c:Class)\nRETURN s, r, c")
GRAPH_OF = {"class_drivers": DRIVERS_GRAPH_CYPHER, "shared_prototypes": SHARED_GRAPH_CYPHER,
            "common_prototypes": COMMON_GRAPH_CYPHER, "pair_separators": SEPARATORS_GRAPH_CYPHER,
            "learning_order": LEARNING_ORDER_GRAPH_CYPHER, "uncertain_prototypes": UNCERTAIN_GRAPH_CYPHER,
            "most_confused": CONFUSED_GRAPH_CYPHER, "prototype_exemplars": EXEMPLARS_GRAPH_CYPHER,
            "sample_evidence": SAMPLE_GRAPH_CYPHER, "misclassified_evidence": SAMPLE_GRAPH_CYPHER}

_TRUST = {  # what a column of the evidence means, for the first slide and each question's slide
    "q": "<b>q</b>: the claim's Benjamini–Hochberg adjusted p-value against a permutation null (the saliency "
         "changes shuffled between samples, whole trajectories at a time). A claim is stored only when q ≤ the "
         "run's false discovery rate; about that share of the claims of one kind may still be noise.",
    "recurrence": "<b>recurrence</b>: the share of re-fits (other K-means seeds, bootstrap resamples of the probe "
                  "set; <code>i2x stability</code>) that make the same claim. Empty until that test ran; a claim "
                  "found in few re-fits depends on this one fit's prototypes.",
    "faithfulness": "<b>faithfulness</b>: the final model with the claimed prototypes deleted at the explained "
                    "layer, against random prototype sets of the same size (<code>percentile</code>, "
                    "<code>p</code>). β tells what training did; only this test tells whether the final model "
                    "still relies on it.",
}


@dataclass(frozen=True)
class GuideRun:
    """What the guide shows of one run: its id, numbers, and example parameter values per kind."""

    run_id: str | None
    dataset: str = ""
    fdr_q: float | None = None
    claims: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (claims, with recurrence)
    deletions: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (tests, passed)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)

    def params(self, question: Question) -> dict[str, Any]:
        """``$runId`` and every parameter of ``question``, filled in with this run's example (or the default)."""
        pool = {**self.examples.get("sample", {}), **self.examples.get("driver", {}),
                **self.examples.get(_EXAMPLE_OF.get(question.name, "driver"), {})}
        filled = {"runId": self.run_id}
        for p in question.params:
            filled[p.name] = pool.get(p.name, 0 if p.required else p.default)
        return filled


def read_run(store: Any, run_id: str | None = None) -> GuideRun:
    """Run ``run_id`` (None: the latest complete run) of ``store`` (a :class:`~i2x_plugin.store.GraphStore`) as
    the guide shows it; ``GuideRun(None)`` if there is no such complete run."""
    runs = store.read(RUN_CYPHER, runId=run_id)
    if not runs:
        return GuideRun(None)
    run = runs[0]
    run_id = run["runId"]
    try:
        fdr_q = float(json.loads(run["config"] or "{}").get("fdr_q"))
    except (TypeError, ValueError):
        fdr_q = None
    examples = {}
    for kind, cypher in _EXAMPLES.items():
        rows = store.read(cypher, runId=run_id)
        if rows:
            examples[kind] = rows[0]
    claims = {r["kind"]: (r["claims"], r["withRecurrence"]) for r in store.read(CLAIM_COUNTS_CYPHER, runId=run_id)}
    deletions = {r["kind"]: (r["tests"], r["passed"])
                 for r in store.read(DELETION_COUNTS_CYPHER, runId=run_id, alpha=fdr_q or 0.05)}
    return GuideRun(run_id, run.get("dataset") or "", fdr_q, claims, deletions, examples)


def guide_page(data_dir: str | os.PathLike[str], port: int, run_id: str | None = None) -> str:
    """The guide to run ``run_id`` (None: the latest complete run) of the store of ``data_dir``, read as its
    read-only user, with links to the bridge on ``port``."""
    from i2x_plugin.store.graph import GraphStore

    server = EmbeddedServer(data_dir)
    status = server.status()
    if not status.running:
        raise GuideUnavailableError(f"The embedded graph store of {server.data_dir} is not running, so there is no "
                                    "run to guide through. Start it (i2x store start) and :play the guide again.")
    try:
        store = GraphStore.from_uri(status.uri, server.reader_auth, DATABASE)
    except StoreError as e:
        raise GuideUnavailableError(f"The embedded graph store does not answer ({e}); :play the guide again "
                                    "once it does.") from e
    try:
        return render_guide(read_run(store, run_id), port, run_id)
    finally:
        store.close()


def param_commands(params: dict[str, Any]) -> str:
    """``:param name => value;`` lines. Browser evaluates each value on the server (``RETURN value``), so an
    integer stays an integer; ``:params {...}`` would parse the map in JavaScript and make every number a float,
    which ``LIMIT $top`` and ``list[$step]`` refuse."""
    return "\n".join(f":param {name} => {json.dumps(value) if value is not None else 'null'};"
                     for name, value in params.items())


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _run_block(cypher: str) -> str:
    return f'<pre class="code runnable">{_esc(cypher)}</pre>'




def _slide(title: str, body: str) -> str:
    return f'<slide class="row-fluid">\n<div class="col-sm-12">\n<h3>{_esc(title)}</h3>\n{body}\n</div>\n</slide>'


def _first_slide(run: GuideRun, port: int) -> str:
    style = f"style http://localhost:{port}/i2x.grass"
    fdr = f"{run.fdr_q:g}" if run.fdr_q is not None else "the run's fdr_q"
    counts = "".join(f"<li>{kind}: {n} claims, {with_r} with a recurrence</li>" for kind, (n, with_r)
                     in sorted(run.claims.items())) or "<li>no claim is stored for this run</li>"
    tests = "".join(f"<li>{kind}: {passed} of {n} claim groups beat random prototype sets (p ≤ {fdr})</li>" for kind, (n, passed)
                    in sorted(run.deletions.items())) or "<li>no deletion test is stored (faithfulness was off)</li>"
    intro = (f"<p>Run <code>{_esc(run.run_id or '')}</code>{' on ' + _esc(run.dataset) if run.dataset else ''}: "
             "why the model looks where it looks, as claims about prototypes (recurring regions of saliency) and "
             "classes. First apply the project's style (colours per label, captions by name, β on the edges):</p>"
             + _run_block(f":{style}") +
             "<p>The next slide says how far to trust a claim; each slide after it is one question of the catalog, "
             "with its parameters filled in from this run.</p>")
    trust = (f"<p>A claim is shown only when it passes the null test (false discovery rate {fdr}). Its evidence:</p>"
             "<ul>" + "".join(f"<li>{text}</li>" for text in _TRUST.values()) +
             f"</ul><p>In this run:</p><ul>{counts}</ul><p>Deletion tests:</p><ul>{tests}</ul>")
    return (_slide("I2X: explanations of an image classifier", intro) + "\n"
            + _slide("How far to trust a claim", trust))


def _question_slide(question: Question, run: GuideRun) -> str:
    params = run.params(question)
    columns = {c.name for c in question.returns}
    reading = [text for key, text in _TRUST.items() if key in columns or (key == "faithfulness" and "percentile" in columns)]
    body = (f"<p>{_esc(question.doc)}</p>"
            + "<p>Set its parameters (click the play icon):</p>" + _run_block(param_commands(params))
            + "<p>then run the question:</p>" + _run_block(question.cypher))
    graph = GRAPH_OF.get(question.name)
    if graph is not None:
        body += "<p>The same evidence as a graph:</p>" + _run_block(graph)
    if reading:
        body += "<p>Reading its columns:</p><ul>" + "".join(f"<li>{t}</li>" for t in reading) + "</ul>"
    if question.empty:
        body += f"<p><i>An empty answer means: {_esc(question.empty)}</i></p>"
    return _slide(f"{question.number}. {question.name}", body)


def render_guide(run: GuideRun, port: int, asked: str | None = None) -> str:
    """The guide page (Browser's ``<article class="guide">`` with slides) for ``run``, served on ``port``;
    ``asked``: the run id the request named, for the message when there is no such run."""
    if run.run_id is None:
        which = f"no complete run {asked!r}" if asked else "no complete run"
        slides = [_slide("I2X: no run to explain", f"<p>The graph store holds {_esc(which)}. Write one "
                         "(<code>i2x run</code>, or <code>write_explanation(store, explanation)</code> in Python), "
                         "or name another with <code>guide.html?run=RUN_ID</code>, then :play the guide again.</p>")]
    else:
        slides = [_first_slide(run, port)] + [_question_slide(q, run) for q in load_catalog().values()]
    return ('<article class="guide">\n<carousel class="deck container-fluid">\n'
            + "\n".join(slides) + "\n</carousel>\n</article>\n")
