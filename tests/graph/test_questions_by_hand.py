"""The compact-graph questions on a graph small enough to answer by hand: 2 classes, 3 prototypes,
3 checkpoints (2 steps), 3 samples. Every expected value below is worked out from the rows, not
computed by the code under test."""

from __future__ import annotations

import pytest

from i2x_plugin.graph_schema import GraphRows
from i2x_plugin.graph_schema import models as m
from i2x_plugin import questions
from i2x_plugin.ingest import delete_run, write_graph_rows

RUN = "tiny-by-hand"
# β per step, (prototype, class) -> [step 0, step 1]
STEP_BETAS = {(0, 0): [0.2, 0.4], (0, 1): [-0.1, -0.3], (1, 0): [0.0, -0.2], (1, 1): [0.3, 0.1],
              (2, 0): [0.05, 0.05], (2, 1): [-0.1, 0.5]}
CLASS_BETAS = {(0, 0): [0.5, -0.1], (1, 0): [0.1, 0.3], (2, 0): [-0.2, 0.2],
               (0, 1): [0.0, 0.2], (1, 1): [0.4, 0.0], (2, 1): [0.1, -0.5]}


def tiny_rows() -> GraphRows:
    rows, r = GraphRows(), RUN
    rows.add(m.Run(run_id=r, key=r, name="tiny", config="{}", model="hand", layer="f", method="none", dataset="tiny",
                   k=3, num_classes=2, num_checkpoints=3, num_samples=3, class_names=["cat", "dog"], map_size=[2, 2],
                   noise_floor=0.01, created_at="2026-01-01T00:00:00+00:00"))
    for t in range(3):
        rows.add(m.Checkpoint(run_id=r, key=str(t), name=f"ckpt {t}", index=t))
    for c, name in enumerate(("cat", "dog")):
        rows.add(m.Class(run_id=r, key=str(c), name=name, index=c, probe_samples=10))
    for k, by_class in enumerate(([1, 0], [0, 2], [1, 1])):
        rows.add(m.Prototype(run_id=r, key=str(k), name=f"P{k}", index=k, support=4, sample_support=sum(by_class),
                             support_by_class=by_class, exemplar_samples=[], exemplar_boxes=[]))
    for (k, c), betas in STEP_BETAS.items():
        rows.add(m.Drives(run_id=r, source_key=str(k), target_key=str(c), scope="step", betas=betas))
    for (k, c), betas in CLASS_BETAS.items():
        rows.add(m.Drives(run_id=r, source_key=str(k), target_key=str(c), scope="class", betas=betas))
    rows.add(m.ConfusedAs(run_id=r, source_key="0", target_key="1", counts=[5, 3, 2]))
    rows.add(m.ConfusedAs(run_id=r, source_key="1", target_key="0", counts=[4, 1, 0]))
    for c in (0, 1):
        rows.add(m.UncertainBetween(run_id=r, source_key="1", target_key=str(c), a=0, b=1, flips=2, flip_steps=[0, 1],
                                    magnitude=0.2, score=0.4, rank=0))
    rows.add(m.Group(run_id=r, key="1:0:0", name="cat s1 g0", step=1, cls=0, group=0, size=7, noise=False,
                     betas=[0.3, -0.1, 0.6], top_prototypes=[2, 0]))
    rows.add(m.Group(run_id=r, key="1:0:-1", name="cat s1 g-1", step=1, cls=0, group=-1, size=2, noise=True))
    samples = [  # id, label, prediction, prototypes, positions, final intensities
        (10, 0, 1, [0, 2], [3, 1], [0.25, 0.9]),
        (11, 1, 1, [1], [4], [0.6]),
        (12, 1, 0, [1, 2], [2, 2], [0.3, 0.3]),
    ]
    for sid, label, pred, protos, positions, final in samples:
        key = f"probe:{sid}"
        rows.add(m.Sample(run_id=r, key=key, name=f"#{sid}", index=sid, sample_id=sid, split="probe", label=label,
                          prediction=pred, correct=label == pred, confidence=0.7, prototypes=protos,
                          prototype_positions=positions, prototype_intensities=final,
                          prototype_intensities_by_checkpoint=[v for f in final for v in (0.0, f / 2, f)]))
        rows.add(m.LabelledAs(run_id=r, source_key=key, target_key=str(label)))
        rows.add(m.PredictedAs(run_id=r, source_key=key, target_key=str(pred), confidence=0.7))
    return rows


@pytest.fixture(scope="module")
def store(graph_store):
    write_graph_rows(graph_store, tiny_rows(), RUN)
    yield graph_store
    delete_run(graph_store, RUN)


def ask(store, name: str, **params):  # type: ignore[no-untyped-def]
    return [row.model_dump() for row in questions.ask(store, name, run_id=RUN, **params)]


def test_class_drivers_at_a_step_read_that_step_of_the_list(store) -> None:
    assert ask(store, "class_drivers", cls=0, step=1) == [
        dict(rank=0, prototype=1, name="P1", beta=0.3, first_step=None),
        dict(rank=1, prototype=2, name="P2", beta=0.2, first_step=None)]
    assert [(r["prototype"], r["beta"]) for r in ask(store, "class_drivers", cls=0, step=0)] == [(0, 0.5), (1, 0.1)]
    assert ask(store, "class_drivers", cls=0, step=2) == []  # 2 steps: 0 and 1
    assert ask(store, "class_drivers", cls=0, step=-1) == []


def test_prototype_evolution_is_the_list(store) -> None:
    assert ask(store, "prototype_evolution", k=2) == [
        dict(cls=0, name="cat", steps=[0, 1], betas=[0.05, 0.05], final_beta=0.05),
        dict(cls=1, name="dog", steps=[0, 1], betas=[-0.1, 0.5], final_beta=0.5)]
    assert [r["betas"] for r in ask(store, "prototype_evolution", k=2, scope="class")] == [[-0.2, 0.2], [0.1, -0.5]]


def test_sample_evidence_takes_the_most_intense_listed_prototype(store) -> None:
    (row,) = ask(store, "sample_evidence", sample=10)
    assert row.pop("beta_by_step") == [-0.1, 0.5]
    assert row == pytest.approx(dict(sample=10, label=0, predicted=1, prototype=2, name="P2", intensity=0.9,
                                     positions=1, beta=0.2))
    (tie,) = ask(store, "sample_evidence", sample=12)  # P1 and P2 both 0.3: the smaller index
    assert (tie["prototype"], tie["predicted"], tie["positions"]) == (1, 0, 2)
    assert tie["beta"] == pytest.approx(-0.1)


def test_misclassified_evidence_averages_each_list(store) -> None:
    # Sample 10 (cat, predicted dog): P0's mean β toward dog is −0.2, P2's is +0.2 → only P2.
    (row,) = ask(store, "misclassified_evidence", sample=10)
    assert row == pytest.approx(dict(sample=10, label=0, predicted=1, prototype=2, name="P2", positions=1,
                                     intensity=0.9, beta_wrong=0.2, beta_true=0.05, push=0.18))
    # Sample 12 (dog, predicted cat): P1 toward cat −0.1 (left out), P2 toward cat +0.05.
    assert [(r["prototype"], round(r["push"], 12)) for r in ask(store, "misclassified_evidence", sample=12)] == [
        (2, 0.015)]


def test_most_confused_reads_the_final_count(store) -> None:
    # Final checkpoint: cat→dog 2, dog→cat 0; P1 is uncertain there; of the misclassified samples only #12 has P1.
    assert ask(store, "most_confused") == [
        dict(a=0, b=1, confusions=2, confusion_rank=1, prototype=1, name="P1", flips=2, flip_steps=[0, 1], score=0.4,
             samples=[12])]


def test_learning_groups_read_the_group_betas(store) -> None:
    assert ask(store, "learning_groups", cls=0, step=1) == [
        dict(group=-1, name="cat s1 g-1", size=2, noise=True, top_prototypes=[], top_betas=[]),
        dict(group=0, name="cat s1 g0", size=7, noise=False, top_prototypes=[2, 0], top_betas=[0.6, 0.3])]


def test_prototype_samples_find_the_listed_prototype(store) -> None:
    assert ask(store, "prototype_samples", k=1) == [
        dict(cls=0, name="cat", probe_samples=0, stored_samples=[], removed_for_curation=0),
        dict(cls=1, name="dog", probe_samples=2, stored_samples=["probe:11", "probe:12"], removed_for_curation=0)]
