"""Step 9 in the graph: the curation set of a run and its fine-tuned checkpoints (question 10).

Written beside the run's explanation graph (same ``runId``), through the schema's models and
upserts, so writing the same result twice changes nothing:

* ``(:CurationSet {variant, rule})-[:FOR_PAIR]->(:Class)`` for both classes of the targeted pair, one
  CurationSet per selection variant (V0–V4) recorded for the run;
* ``(:CurationSet)-[:REMOVES]->(:Sample {split: 'train'})-[:LABELLED_AS]->(:Class)`` for every removed
  training sample (``sampleId`` = its id in the training data set);
* ``(:Checkpoint {schedule, seed})-[:FINE_TUNED_FROM {schedule}]->(:Checkpoint)`` for every fine-tuned
  model (``random->full`` is the random-removal control of the same variant), pointing at the
  checkpoint it started from (the run's final one).

The run's own graph (Run, Class, Checkpoint nodes) must be in the store first (``write_explanation``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .curation import CurationSet
from ..graph_schema import models as m
from ..graph_schema.rows import sample_key
from .study import ImproveResult
from ..method.structure import StructuredExplanation

if TYPE_CHECKING:
    from ..store.graph import GraphStore

TRAIN = "train"
RUN_STATUS_CYPHER = "MATCH (r:Run {runId: $runId}) RETURN r.status AS status"  # checked by tools/cypher-lint


def curation_key(curation: CurationSet) -> str:
    """``"3-5:V0:P7+P2:m1"`` or ``"3-5:V4:cap0.1"``: pair, variant, prototypes and threshold or cap identify a
    curation set within a run."""
    a, b = curation.target.pair
    protos = "+".join(f"P{k}" for k in curation.target.prototypes)
    limit = f"m{curation.min_positions}" if curation.min_positions is not None else f"cap{curation.cap:g}"
    return ":".join(part for part in (f"{a}-{b}", curation.variant, protos, limit) if part)


def fine_tuned_key(curation: CurationSet, schedule: str, seed: int) -> str:
    return f"ft:{curation_key(curation)}:{schedule}:s{seed}"


def write_improvement(store: GraphStore, explanation: StructuredExplanation, curation: CurationSet,
                      result: ImproveResult) -> dict[str, int | str]:
    """Upsert the curation set, its removed training samples and the fine-tuned checkpoints; returns counts."""
    from ..graph.ingest import write_nodes, write_relationships

    run_id = explanation.run_id
    found = store.read(RUN_STATUS_CYPHER, runId=run_id)
    if not found:
        raise ValueError(f"Run {run_id!r} is not in the graph store {store.uri}; write the explanation first "
                         "(write_explanation(store, explanation), as 'i2x run' does), then record the improvement.")
    names = explanation.class_names
    key = curation_key(curation)
    a, b = curation.target.pair
    write_nodes(store, "CurationSet", [m.CurationSet(
        run_id=run_id, key=key, name=f"curated {names[a]}↔{names[b]} ({curation.variant}: {curation.rule})",
        prototypes=list(curation.target.prototypes), threshold=curation.min_positions, pair=[a, b],
        removed_by_class=json.dumps({str(c): n for c, n in curation.removed_per_class.items()}),
        size=int(len(curation.removed)), variant=curation.variant, cap=curation.cap, rule=curation.rule)])
    write_relationships(store, "FOR_PAIR", [m.ForPair(run_id=run_id, source_key=key, target_key=str(c))
                                           for c in (a, b)])

    ids = curation.removed_ids()
    samples = [m.Sample(run_id=run_id, key=sample_key(TRAIN, sid), name=f"train #{int(sid)} ({names[int(y)]})",
                        index=int(pos), sample_id=int(sid), split=TRAIN, label=int(y))
               for pos, sid, y in zip(curation.removed, ids, curation.labels[curation.removed])]
    write_nodes(store, "Sample", samples)
    write_relationships(store, "LABELLED_AS", [m.LabelledAs(run_id=run_id, source_key=s.key,
                                                            target_key=str(s.label_index)) for s in samples])
    write_relationships(store, "REMOVES", [m.Removes(run_id=run_id, source_key=key, target_key=s.key)
                                           for s in samples])

    final = explanation.checkpoints[-1]
    checkpoints = []
    for run in result.runs:
        epochs = len(run.schedule.split("->")) * result.config.epochs_per_stage
        checkpoints.append(m.Checkpoint(
            run_id=run_id, key=fine_tuned_key(curation, run.schedule, run.seed),
            name=f"{run.schedule.replace('->', '→')} seed {run.seed}", index=final.index + epochs,
            epoch=None if final.epoch is None else float(final.epoch) + epochs, path=run.checkpoint,
            schedule=run.schedule, seed=run.seed, test_accuracy=run.accuracy, pair_confusions=run.confusions))
    write_nodes(store, "Checkpoint", checkpoints)
    write_relationships(store, "FINE_TUNED_FROM", [
        m.FineTunedFrom(run_id=run_id, source_key=c.key, target_key=str(final.index), schedule=c.schedule)
        for c in checkpoints])
    return {"curation_set": key, "removed": len(samples), "checkpoints": len(checkpoints)}
