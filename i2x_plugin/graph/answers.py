"""The three example questions ``i2x run`` asks the graph at the end, in plain sentences.

1. The most confused pair: which prototypes are uncertain between its classes (training dynamics), which
   misclassified samples contain them, and its confusers (reliance, final model: deleting them turns the
   confusions back) (catalog question ``most_confused``, method.md question 9).
2. In what order the model separated the class pairs, with both orders per pair: when β separated it and when
   the final model's margin reliance formed (``learning_order``, question 6).
3. Why one sample looks where it looks: its most salient prototype and that prototype's β toward the
   predicted class (``sample_evidence``, question 1), for a misclassified sample of the most confused
   pair when there is one, else for the top exemplar of the first uncertain (or driving) prototype.

Every answer comes from the graph (``i2x_plugin.graph.questions.ask``), not from the in-memory explanation, so what is
printed is what a user gets with the printed ``i2x ask`` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..method.pvalues import format_p

from .questions import ask

if TYPE_CHECKING:
    from ..store import GraphStore
    from ..method.structure import StructuredExplanation

_MAX_LISTED = 8


@dataclass
class ExampleAnswer:
    """One example question, the command that asks it again, the graph's rows and a sentence."""

    question: str
    command: str
    rows: list[dict[str, Any]]
    text: str


def _listing(items: list[str], total: int | None = None) -> str:
    total = len(items) if total is None else total
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", … ({total} in all)" if total > _MAX_LISTED else "")


def _evidence(q: float | None, level: float) -> str:
    """A q-value in words: significant at the run's level, or not distinguishable from noise."""
    if q is None:
        return "not tested"
    return format_p(q, "q") + ("" if q <= level else f", not distinguishable from noise at q ≤ {level:g}")


def _deletion_sentence(row: dict[str, Any], names: list[str], level: float) -> str:
    """The sample's reliance answer (final model): the prototypes whose deletion moves its prediction most, each
    with its class-level RELIES_ON edge toward the predicted class (q, and the checkpoint it formed at)."""
    if not row.get("deletionPrototypes"):
        return ""
    parts = []
    for name, drop, other, q, formed in zip(row["deletionNames"], row["deletionPredictedDrops"],
                                            row["deletionRunnerUpDrops"], row["deletionQs"], row["deletionFormedAt"]):
        edge = "" if q is None else f"; class-level edge toward {names[row['predicted']]}: {format_p(q, 'q')}" + (
            f", formed at checkpoint {formed}" if formed is not None
            else f", not claimed at q ≤ {level:g}" if q > level else ", not dated")
        parts.append(f"{name} (confidence in {names[row['predicted']]} −{drop:.3f}, in {names[row['runnerUp']]} "
                     f"{-other:+.3f}{edge})")
    return (f" Deleting its cells (reliance, final model), these change the prediction most: " + ", ".join(parts)
            + ".")


def _confuser_sentence(row: dict[str, Any], level: float) -> str:
    """The pair's confusers (reliance, final model): each with its turn-back effect and q, and the top set's test."""
    if not row.get("confusers"):
        return ""
    parts = [f"{name} ({effect:+.3f}, {format_p(q, 'q')}" + (f", formed at checkpoint {formed}" if formed is not None
             else "" if claimed else f", not claimed at q ≤ {level:g}") + ")"
             for name, effect, q, claimed, formed in zip(row["confuserNames"], row["confuserEffects"],
                                                         row["confuserQs"], row["confuserClaimed"],
                                                         row["confuserFormedAt"])]
    tested = ""
    if row.get("confuserSetPercentile") is not None:
        tested = (f" Deleted together they beat {100 * row['confuserSetPercentile']:.0f} % of matched random "
                  f"prototype sets and turn {row['confuserSetTurnedBack']} of {row['confuserSamples']} held-out "
                  "misclassified samples back to their true class.")
    return ("\nConfusers (reliance, final model: deleting each on the pair's held-out misclassified samples raises the "
            f"true class's confidence beyond the other classes'): {_listing(parts)}.{tested}")


def _both_orders(rows: list[dict[str, Any]]) -> str:
    """When β separated each pair (training dynamics) and when the final model's margin reliance formed."""
    both = [f"{r['nameA']}↔{r['nameB']} (β from checkpoint {r['betaSeparatedAt']}, margin reliance from checkpoint "
            f"{r['marginReliedAt']})" for r in rows
            if r.get("betaSeparatedAt") is not None and r.get("marginReliedAt") is not None]
    if not both:
        return ""
    return ("\nBoth orders, pair by pair (β separates: training dynamics; margin reliance: the final model's margin "
            f"drops when the prototype is deleted, dated by its formation step): {_listing(both)}.")


def _direction(beta: float, q: float | None, level: float) -> str:
    """What a significant pooled β says about the sample's prediction; nothing when β is not significant."""
    if q is None or q > level:
        return "."
    return ": more saliency on it " + ("raises" if beta > 0 else "lowers") + " the confidence in that class."


def _checkpoint_name(explanation: StructuredExplanation, index: int | None) -> str:
    if index is None:
        return "not yet"
    c = explanation.checkpoints[index]
    return f"epoch {c.epoch:g}" if c.epoch is not None else f"checkpoint {index}"


def example_answers(store: GraphStore, explanation: StructuredExplanation) -> list[ExampleAnswer]:
    """Ask the graph the three example questions about ``explanation``'s run."""
    run, cn = explanation.run_id, explanation.class_names
    answers = []

    confused = ask(store, "most_confused", run_id=run)
    rows = confused.to_dicts()  # keyed by the Cypher column names of graph_schema/queries/*.cypher
    samples = sorted({s for r in rows for s in r["samples"]})
    pair = (rows[0]["a"], rows[0]["b"]) if rows else None
    if rows:
        first = rows[0]
        protos = [f"{r['name']} ({r['flips']} flips, at steps {', '.join(map(str, r['flipSteps']))}; {format_p(r['q'], 'q')})"
                  for r in rows]
        rank = first.get("confusionRank", 1)
        which = "the most confused pair" if rank == 1 else f"the most confused pair with uncertain prototypes (#{rank})"
        text = (f"{cn[first['a']]} ↔ {cn[first['b']]} is {which}: {first['confusions']} confusions at the final "
                f"checkpoint. Uncertain prototypes (training dynamics, β): {_listing(protos)}.\n"
                + (f"Misclassified samples containing them: {_listing([f'#{s}' for s in samples])}." if samples
                   else "No misclassified stored sample contains them.")
                + _confuser_sentence(first, explanation.config.fdr_q))
    else:
        text = confused.hint or "No answer."
    answers.append(ExampleAnswer("Which prototypes are uncertain in the most confused pair, which misclassified "
                                 "samples contain them, and which turn the confusions back?",
                                 f"i2x ask most_confused --run {run}",
                                 rows, text))

    order = ask(store, "learning_order", run_id=run)
    rows = order.to_dicts()
    if rows:
        done = [f"{r['nameA']}↔{r['nameB']} ({_checkpoint_name(explanation, r['separatedAt'])})" for r in rows
                if r["separatedAt"] is not None]
        open_pairs = [f"{r['nameA']}↔{r['nameB']}" for r in rows if r["separatedAt"] is None]
        text = (f"Separated first to last (confusions on the probe set): {_listing(done) or 'none yet'}."
                + (f"\nNot separated by the final checkpoint: {_listing(open_pairs)}." if open_pairs else "")
                + _both_orders(rows))
    else:
        text = order.hint or "No answer."
    answers.append(ExampleAnswer("In what order did the model separate the class pairs?",
                                 f"i2x ask learning_order --run {run}", rows, text))

    sample = _example_sample(explanation, samples, pair)
    if sample is not None:
        evidence = ask(store, "sample_evidence", run_id=run, sample=sample)
        rows = evidence.to_dicts()
        if rows:
            r = rows[0]
            cells = explanation.map_size[0] * explanation.map_size[1]
            verdict = "correctly" if r["label"] == r["predicted"] else "wrongly"
            text = (f"Sample #{r['sample']} (true {cn[r['label']]}, {verdict} predicted {cn[r['predicted']]}) looks "
                    f"most at {r['name']} (intensity {r['intensity']:.2f} over {r['positions']} of {cells} cells). "
                    f"{r['name']}'s β toward {cn[r['predicted']]}, pooled over steps, is {r['beta']:+.3f} "
                    f"({_evidence(r['q'], explanation.config.fdr_q)})"
                    + _direction(r["beta"], r["q"], explanation.config.fdr_q)
                    + _deletion_sentence(r, cn, explanation.config.fdr_q))
        else:
            text = evidence.hint or "No answer."
        answers.append(ExampleAnswer(f"Why does sample #{sample} look where it looks?",
                                     f"i2x ask sample_evidence --param sample={sample} --run {run}",
                                     rows, text))
    return answers


def _example_sample(explanation: StructuredExplanation, misclassified: list[int],
                    pair: tuple[int, int] | None) -> int | None:
    """A stored sample worth asking about: one of the most confused pair taken for the other class of the
    pair, else any misclassified one listed, else the top exemplar of an uncertain (or driving) prototype."""
    if misclassified and pair is not None:
        position = {int(s): i for i, s in enumerate(explanation.sample_ids)}
        final = explanation.predictions[-1]
        for sample in misclassified:
            i = position.get(int(sample))
            if i is not None and {int(explanation.labels[i]), int(final[i])} == set(pair):
                return int(sample)
    if misclassified:
        return int(min(misclassified))
    prototypes = [u.prototype for u in explanation.uncertain] + [d.prototype for d in explanation.drivers]
    for k in prototypes:
        for e in explanation.exemplars:
            if e.prototype == k:
                return int(explanation.sample_ids[e.sample])
    return int(explanation.sample_ids[explanation.exemplars[0].sample]) if explanation.exemplars else None
