"""A :class:`StructuredExplanation` as graph rows: the exact nodes and relationships the store holds.

:func:`explanation_rows` turns an explanation into :class:`GraphRows` — per label, node property
dicts; per relationship type, dicts with ``runId``, ``from``, ``to`` (node keys) and the properties —
all validated through :mod:`.models`, so only Neo4j property types reach the database.
:meth:`GraphRows.to_networkx` builds the same graph as a networkx ``MultiDiGraph`` (node ids
``"Label:key"``): the networkx form of an explanation.

Which samples become Sample nodes (not all N probe samples): every exemplar, every sample
misclassified at the final checkpoint, and per uncertain pair (a, b) up to
``uncertain_samples_per_pair`` samples of classes a or b containing one of the pair's uncertain
prototypes (most positions of those prototypes first). A stored sample lists every prototype it
contains, with positions and intensities, as properties.

The graph is compact: a series is one list property, not one relationship per entry — β per step on
one ``DRIVES`` per (prototype, class, scope), confusions per checkpoint on one ``CONFUSED_AS`` per
ordered class pair, a group's β per prototype on its ``Group`` node, a sample's prototypes on its
``Sample`` node. On the default run (mnist-5k, 9 checkpoints, K = 32) that is 6,214 rows rather than
37,322 with one relationship per entry (6.0×; bench/graph.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from i2x_plugin.method.pvalues import floor_p

from . import models as m
from .reliance import add_pair_reliance_rows, add_reliance_rows, add_sample_reliance_rows

if TYPE_CHECKING:
    import networkx as nx

    from i2x_plugin.method.structure import StructuredExplanation

PROBE = "probe"
SCHEMA_VERSION = 2
CLAIM_KINDS = ("drivers", "separators", "uncertain", "shared", "specialised")
STABILITY_KINDS = ("drivers", "top drivers", "separators", "uncertain")


def _q(value: float) -> float | None:
    """A p- or q-value as a property: absent (None) where the scope was not tested (NaN); raised to the floor
    of :mod:`i2x_plugin.method.pvalues` (a stored 1e-6 reads "< 1e-6": below it the digits carry no information)."""
    return None if np.isnan(value) else floor_p(float(value))


def node_id(label: str, key: str) -> str:
    """The networkx node id of a node: ``"Label:key"`` (unique within one run)."""
    return f"{label}:{key}"


def sample_key(split: str, sample_id: int) -> str:
    """Key of a Sample node: ``"<split>:<sample id>"``, e.g. ``"probe:165"`` or ``"train:42"``."""
    return f"{split}:{int(sample_id)}"


@dataclass
class GraphRows:
    """Plain rows of one or more runs' graph: ``nodes[label]`` and ``relationships[type]``."""

    nodes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    relationships: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, item: m.GraphNode | m.GraphRelationship) -> None:
        """Append one validated node or relationship model."""
        if isinstance(item, m.GraphNode):
            self.nodes[item.label].append(item.props())
        else:
            self.relationships[item.type].append(item.props())

    @property
    def node_count(self) -> int:
        return sum(map(len, self.nodes.values()))

    @property
    def relationship_count(self) -> int:
        return sum(map(len, self.relationships.values()))

    def __len__(self) -> int:
        return self.node_count + self.relationship_count

    def to_networkx(self) -> nx.MultiDiGraph:
        """A ``MultiDiGraph``: node ids ``"Label:key"`` with ``labels`` ([label]) + properties; one edge per
        relationship, keyed ``"TYPE"`` or ``"TYPE{identity}"``, with ``type`` + properties."""
        import networkx as nx

        graph = nx.MultiDiGraph()
        for label, rows in self.nodes.items():
            for row in rows:
                graph.add_node(node_id(label, row["key"]), labels=[label], **row)
        for rel_type, rows in self.relationships.items():
            model = m.relationship_model(rel_type)
            for row in rows:
                props = {k: v for k, v in row.items() if k not in ("runId", "from", "to")}
                graph.add_edge(node_id(model.source.label, row["from"]), node_id(model.target.label, row["to"]),
                               key=edge_key(model, props), type=rel_type, **props)
        return graph


def edge_key(model: type[m.GraphRelationship], props: Mapping[str, Any]) -> str:
    """The networkx edge key: the type and its identity properties, e.g. ``"DRIVES{scope=class,step=3}"``."""
    if not model.identity:
        return model.type
    names = [model.model_fields[f].alias or f for f in model.identity]
    return model.type + "{" + ",".join(f"{n}={props[n]}" for n in names) + "}"


def _stored_samples(e: StructuredExplanation, per_pair: int | None) -> dict[int, list[str]]:
    """Probe positions to store, with why (``reasons``)."""
    reasons: dict[int, list[str]] = defaultdict(list)
    for i in sorted({x.sample for x in e.exemplars}):
        reasons[i].append("exemplar")
    for i in np.flatnonzero(e.predictions[-1] != e.labels).tolist():
        reasons[i].append("misclassified")
    by_pair: dict[tuple[int, int], list[int]] = defaultdict(list)
    for u in e.uncertain:
        by_pair[(u.a, u.b)].append(u.prototype)
    for (a, b), protos in by_pair.items():
        positions = e.presence[:, protos].sum(1)
        candidates = np.flatnonzero(np.isin(e.labels, (a, b)) & (positions > 0))
        order = candidates[np.lexsort((candidates, -positions[candidates]))]
        for i in order[:per_pair].tolist() if per_pair is not None else order.tolist():
            if "uncertain" not in reasons[i]:
                reasons[i].append("uncertain")
    return dict(sorted(reasons.items()))


def explanation_rows(explanation: StructuredExplanation, *, uncertain_samples_per_pair: int | None = 50,
                     image_uris: Mapping[int, str] | None = None) -> GraphRows:
    """The graph of one run: every node and relationship as validated plain rows.

    Args:
        explanation: the I2X result.
        uncertain_samples_per_pair: cap on the uncertain-pair samples stored per pair (None: all).
        image_uris: optional probe position -> image file path/URI, stored as ``Sample.imageUri``.
    """
    e, rows = explanation, GraphRows()
    rid = e.run_id
    counts, stable = e.claim_counts, e.stability
    T, N, C, K = len(e.checkpoints), len(e.labels), e.num_classes, e.k
    ids = np.asarray(e.sample_ids)
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"Run {rid!r}: sample_ids are not unique, so samples cannot be keyed in the graph. "
                         "Pass unique sample ids (e.g. each sample's index in its data set) to I2X.explain.")
    uris = image_uris or {}
    names = e.class_names
    present = e.presence > 0

    def key_of(i: int) -> str:
        return sample_key(PROBE, ids[i])

    rows.add(m.Run(run_id=rid, key=rid, name=f"{e.model_name} · {e.dataset} · {rid}", config=e.config.to_json(),
                   model=e.model_name, layer=e.layer, method=e.method, dataset=e.dataset, k=K, num_classes=C,
                   num_checkpoints=T, num_samples=N, class_names=list(names), map_size=list(e.map_size),
                   schema_version=SCHEMA_VERSION, fdr_q=e.config.fdr_q, claim_kinds=list(CLAIM_KINDS),
                   claims_real=[counts.real[k] for k in CLAIM_KINDS] if counts else [],
                   claims_noise=[float(counts.null_mean[k]) for k in CLAIM_KINDS] if counts else [],
                   stability_jaccard=[stable.mean_jaccard[k] for k in STABILITY_KINDS] if stable else [],
                   stability_tau=float(np.mean(stable.learning_order_tau)) if stable and stable.refits else None,
                   skipped=list(e.skipped), created_at=e.created_at))
    for ck in e.checkpoints:
        rows.add(m.Checkpoint(run_id=rid, key=str(ck.index), name=ck.name, index=ck.index, step=ck.step,
                              epoch=ck.epoch, accuracy=ck.accuracy, train_loss=ck.train_loss, path=ck.path))
        rows.add(m.HasCheckpoint(run_id=rid, source_key=rid, target_key=str(ck.index)))
    for t in range(T - 1):
        rows.add(m.Next(run_id=rid, source_key=str(e.checkpoints[t].index),
                        target_key=str(e.checkpoints[t + 1].index), step=t))
    for c in range(C):
        rows.add(m.Class(run_id=rid, key=str(c), name=names[c], index=c, probe_samples=int((e.labels == c).sum())))
        rows.add(m.HasClass(run_id=rid, source_key=rid, target_key=str(c)))

    exemplars: dict[int, list[Any]] = defaultdict(list)
    for x in e.exemplars:
        exemplars[x.prototype].append(x)
    for k in range(K):
        xs = exemplars[k]
        rows.add(m.Prototype(
            run_id=rid, key=str(k), name=f"P{k}", index=k, support=int(e.presence[:, k].sum()),
            sample_support=int(present[:, k].sum()),
            support_by_class=[int((present[:, k] & (e.labels == c)).sum()) for c in range(C)],
            exemplar_samples=[key_of(x.sample) for x in xs], exemplar_boxes=[int(v) for x in xs for v in x.box]))
        rows.add(m.HasPrototype(run_id=rid, source_key=rid, target_key=str(k)))

    # β toward each class, one list over the steps with its scores: the all-samples fit and each class's own fit.
    for k in range(K):
        for c in range(C):
            rows.add(m.Drives(run_id=rid, source_key=str(k), target_key=str(c), scope="step",
                              betas=e.beta_step[:, k, c].tolist(), zs=e.z_step[:, k, c].tolist(),
                              beta=float(e.beta_overall[k, c]), q=_q(e.q_overall[k, c])))
            rows.add(m.Drives(run_id=rid, source_key=str(k), target_key=str(c), scope="class",
                              betas=e.beta_class[:, c, k].tolist(), zs=e.z_class[:, c, k].tolist(),
                              beta=float(e.beta_driver[c, k]), q=_q(e.q_driver[c, k])))
    for d in e.drivers:
        rows.add(m.KeyDriverOf(run_id=rid, source_key=str(d.prototype), target_key=str(d.cls), beta=d.beta, z=d.z,
                               p=_q(d.p), q=_q(d.q), saliency_share=d.saliency_share, rank=d.rank,
                               first_step=d.first_step,
                               recurrence=d.recurrence))

    # Learning-pattern groups with their own fit's β per prototype.
    fitted = {tuple(int(v) for v in key): i for i, key in enumerate(e.beta_group_keys)}
    for g in e.groups:
        gkey = f"{g.step}:{g.cls}:{g.group}"
        fit = fitted.get((g.step, g.cls, g.group))
        rows.add(m.Group(run_id=rid, key=gkey, name=f"{names[g.cls]} s{g.step} g{g.group}", step=g.step, cls=g.cls,
                         group=g.group, size=g.size, noise=g.group == -1,
                         betas=None if fit is None else e.beta_group[fit].tolist(),
                         top_prototypes=[int(k) for k in g.top_prototypes]))
        rows.add(m.InClass(run_id=rid, source_key=gkey, target_key=str(g.cls)))
    for s in e.shared:
        kind = m.SharedBy if s.kind == "shared" else m.SpecialisedTo
        rows.add(kind(run_id=rid, source_key=str(s.prototype), target_key=str(s.cls), fraction=float(s.fraction),
                      steps=[int(st) for st, _ in s.groups], groups=[int(gr) for _, gr in s.groups], q=_q(s.q)))

    # Between classes: separators, separation checkpoints and order, uncertainty, confusion.
    for sp in e.separators:
        rows.add(m.Separates(run_id=rid, source_key=str(sp.prototype), target_key=str(sp.favours), a=sp.a, b=sp.b,
                             against=sp.b if sp.favours == sp.a else sp.a, first_step=sp.first_step,
                             steps=list(sp.steps), margin=float(sp.margin), z=sp.z, p=_q(sp.p), q=_q(sp.q),
                             recurrence=sp.recurrence))
    order = {(a, b): i for i, (a, b) in enumerate(e.learning_order)}
    for ps in e.separations:
        rows.add(m.SeparatedFrom(run_id=rid, source_key=str(ps.a), target_key=str(ps.b),
                                 checkpoint=ps.separation_checkpoint, threshold=ps.threshold,
                                 peak_confusion=ps.peak_confusion, final_confusion=ps.final_confusion,
                                 confusion_by_checkpoint=list(ps.confusion_by_checkpoint),
                                 order=order.get((ps.a, ps.b))))
    for r, u in enumerate(e.uncertain):
        for cls in (u.a, u.b):
            rows.add(m.UncertainBetween(run_id=rid, source_key=str(u.prototype), target_key=str(cls), a=u.a, b=u.b,
                                        flips=u.flips, flip_steps=list(u.flip_steps),
                                        significant_steps=list(u.significant_steps), signs=list(u.signs),
                                        magnitude=float(u.magnitude), score=float(u.score), p=_q(u.p), q=_q(u.q),
                                        rank=r,
                                        recurrence=u.recurrence))
    for t in e.faithfulness_results:
        tkey = f"{t.kind}:{t.a}:{'' if t.b is None else t.b}"
        what = (f"drivers of {names[t.a]}" if t.b is None else
                f"{t.kind} {names[t.a]} over {names[t.b]}" if t.kind == "separators" else
                f"{t.kind} {names[t.a]}↔{names[t.b]}")
        rows.add(m.DeletionTest(run_id=rid, key=tkey, name=f"deletion: {what}", kind=t.kind, cls=t.a, other=t.b,
                                prototypes=list(t.prototypes), samples=t.samples, area=t.area, effect=t.effect,
                                random_median=t.random_median, percentile=t.percentile, p=t.p,
                                static_prototypes=list(t.static_prototypes), static_effect=t.static_effect,
                                static_percentile=t.static_percentile))
        rows.add(m.Tests(run_id=rid, source_key=tkey, target_key=str(t.a)))
        for k in t.prototypes:
            rows.add(m.Deletes(run_id=rid, source_key=tkey, target_key=str(k)))
    off_diagonal = e.confusion * (1 - np.eye(C, dtype=e.confusion.dtype))
    for i, j in zip(*np.nonzero(off_diagonal.any(0))):
        rows.add(m.ConfusedAs(run_id=rid, source_key=str(i), target_key=str(j), counts=e.confusion[:, i, j].tolist()))

    # Stored samples, what they contain, and the exemplars.
    final = e.predictions[-1]
    for i, why in _stored_samples(e, uncertain_samples_per_pair).items():
        label, pred = int(e.labels[i]), int(final[i])
        skey = key_of(i)
        name = f"#{int(ids[i])} {names[label]}" + ("" if label == pred else f"→{names[pred]}")
        contained = np.flatnonzero(present[i])
        rows.add(m.Sample(run_id=rid, key=skey, name=name, index=i, sample_id=int(ids[i]), split=PROBE, label=label,
                          prediction=pred, correct=label == pred, confidence=float(e.confidences[-1, i, pred]),
                          reasons=why, image_uri=uris.get(i), prototypes=contained.tolist(),
                          prototype_positions=e.presence[i, contained].tolist(),
                          prototype_intensities=e.intensities[-1, i, contained].tolist(),
                          prototype_intensities_by_checkpoint=e.intensities[:, i, contained].T.ravel().tolist()))
        rows.add(m.LabelledAs(run_id=rid, source_key=skey, target_key=str(label)))
        rows.add(m.PredictedAs(run_id=rid, source_key=skey, target_key=str(pred),
                               confidence=float(e.confidences[-1, i, pred])))
    for k, xs in exemplars.items():
        for r, x in enumerate(xs):
            rows.add(m.ExemplarOf(run_id=rid, source_key=key_of(x.sample), target_key=str(k), rank=r,
                                  intensity=float(x.intensity), presence=int(x.presence), box=list(x.box)))
    add_reliance_rows(rows, e)  # RELIES_ON: the final model's reliance relation, beside DRIVES
    add_sample_reliance_rows(rows, e, key_of)  # DELETION_MOVES: per stored sample
    add_pair_reliance_rows(rows, e)  # MARGIN_RELIES_ON and CONFUSES: the pair relations, beside SEPARATES / UNCERTAIN_BETWEEN
    return rows


def validated_rows(model: type[m.GraphNode] | type[m.GraphRelationship],
                   rows: Iterable[Mapping[str, Any] | m.GraphNode | m.GraphRelationship]) -> list[dict[str, Any]]:
    """Validate rows (dicts with camelCase or snake_case keys, or model instances) against ``model``."""
    out = []
    for row in rows:
        item = row if isinstance(row, model) else model.model_validate(dict(row))
        out.append(item.props())
    return out
