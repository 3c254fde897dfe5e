"""The compact-graph questions on a graph small enough to answer by hand: 2 classes, 3 prototypes,
3 checkpoints (2 steps), 3 samples. Every expected value below is worked out from the rows, not
computed by the code under test."""

from __future__ import annotations

import pytest

from i2x_plugin.graph_schema import GraphRows
from i2x_plugin.graph_schema import models as m
from i2x_plugin import questions
from i2x_plugin.graph.ingest import delete_run, write_graph_rows

RUN = "tiny-by-hand"
# β per step, (prototype, class) -> [step 0, step 1]
STEP_BETAS = {(0, 0): [0.2, 0.4], (0, 1): [-0.1, -0.3], (1, 0): [0.0, -0.2], (1, 1): [0.3, 0.1],
              (2, 0): [0.05, 0.05], (2, 1): [-0.1, 0.5]}
CLASS_BETAS = {(0, 0): [0.5, -0.1], (1, 0): [0.1, 0.3], (2, 0): [-0.2, 0.2],
               (0, 1): [0.0, 0.2], (1, 1): [0.4, 0.0], (2, 1): [0.1, -0.5]}
DELETION_TESTS = [
    dict(kind="drivers", cls=0, other=None, prototypes=[2, 0], samples=10, effect=0.3, random_median=0.1,
         percentile=0.96, p=0.04, static_prototypes=[1], static_effect=0.2, static_percentile=0.8),
    dict(kind="separators", cls=1, other=0, prototypes=[1], samples=20, effect=0.05, random_median=0.04,
         percentile=0.6, p=0.4, static_prototypes=[], static_effect=None, static_percentile=None)]


def tiny_rows() -> GraphRows:
    rows, r = GraphRows(), RUN
    rows.add(m.Run(run_id=r, key=r, name="tiny", config="{}", model="hand", layer="f", method="none", dataset="tiny",
                   k=3, num_classes=2, num_checkpoints=3, num_samples=3, class_names=["cat", "dog"], map_size=[2, 2],
                   schema_version=2, fdr_q=0.05, claim_kinds=[], claims_real=[], claims_noise=[], stability_jaccard=[],
                   skipped=[], created_at="2026-01-01T00:00:00+00:00"))
    for t in range(3):
        rows.add(m.Checkpoint(run_id=r, key=str(t), name=f"ckpt {t}", index=t))
    for c, name in enumerate(("cat", "dog")):
        rows.add(m.Class(run_id=r, key=str(c), name=name, index=c, probe_samples=10))
    for k, by_class in enumerate(([1, 0], [0, 2], [1, 1])):
        rows.add(m.Prototype(run_id=r, key=str(k), name=f"P{k}", index=k, support=4, sample_support=sum(by_class),
                             support_by_class=by_class, exemplar_samples=[], exemplar_boxes=[]))
    # The pooled β of each is set to the mean of its steps here, and its q to 0.01 · (k + 1).
    for scope, series in (("step", STEP_BETAS), ("class", CLASS_BETAS)):
        for (k, c), betas in series.items():
            rows.add(m.Drives(run_id=r, source_key=str(k), target_key=str(c), scope=scope, betas=betas,
                              zs=[10 * b for b in betas], beta=sum(betas) / 2, q=0.01 * (k + 1)))
    rows.add(m.ConfusedAs(run_id=r, source_key="0", target_key="1", counts=[5, 3, 2]))
    rows.add(m.ConfusedAs(run_id=r, source_key="1", target_key="0", counts=[4, 1, 0]))
    rows.add(m.Group(run_id=r, key="1:0:0", name="cat s1 g0", step=1, cls=0, group=0, size=7, noise=False,
                     betas=[0.3, -0.1, 0.6], top_prototypes=[2, 0]))
    rows.add(m.Group(run_id=r, key="1:0:-1", name="cat s1 g-1", step=1, cls=0, group=-1, size=2, noise=True))
    # cat ↔ dog confusions [9, 4, 2] stay ≤ 2 from checkpoint 2 on: separated there, first (and only) in the order.
    rows.add(m.SeparatedFrom(run_id=r, source_key="0", target_key="1", checkpoint=2, threshold=2, peak_confusion=9,
                             final_confusion=2, confusion_by_checkpoint=[9, 4, 2], order=0))
    for k, flips, flip_steps, magnitude, score, p, q, rank in ((1, 2, [0, 1], 0.2, 0.4, 0.001, 0.004, 0),
                                                              (0, 1, [1], 0.1, 0.1, 0.002, 0.008, 1)):
        for c in (0, 1):
            rows.add(m.UncertainBetween(run_id=r, source_key=str(k), target_key=str(c), a=0, b=1, flips=flips,
                                        flip_steps=flip_steps, significant_steps=[0, 1], signs=[1, -1],
                                        magnitude=magnitude, score=score, p=p, q=q, rank=rank))
    # Drivers (pooled over steps): cat has P2 (rank 0 by saliency share) and P0; dog has P0.
    for k, c, beta, share, rank, first in ((0, 0, 0.5, 0.4, 1, 0), (2, 0, 0.3, 0.5, 0, 1), (0, 1, 0.2, 0.3, 0, None)):
        rows.add(m.KeyDriverOf(run_id=r, source_key=str(k), target_key=str(c), beta=beta, z=10 * beta, p=beta / 100,
                               q=beta / 10, saliency_share=share, rank=rank, first_step=first))
    rows.add(m.Separates(run_id=r, source_key="1", target_key="1", a=0, b=1, against=0, first_step=1, steps=[1],
                         margin=0.4, z=3.0, p=0.002, q=0.01))
    rows.add(m.Separates(run_id=r, source_key="2", target_key="0", a=0, b=1, against=1, first_step=0, steps=[0, 1],
                         margin=0.3, z=4.0, p=0.0001, q=0.001))
    # Margin reliance (final model): P2's deletion drops cat's margin over dog, claimed, formed at checkpoint 2; P1's
    # drop of dog's margin is not claimed. P1 is the pair's confuser (top set, not claimed), one edge per class.
    rows.add(m.MarginReliesOn(run_id=r, source_key="2", target_key="0", a=0, b=1, against=1, measure="margin",
                              effect=0.3, random_effect=0.01, p=0.001, q=0.002, rank=1, half="held-out", samples=10,
                              claimed=True, formed_at=2, effects=[0.0, 0.1, 0.3], ps=[0.5, 0.1, 0.001], in_top_set=True,
                              top_set_percentile=1.0))
    rows.add(m.MarginReliesOn(run_id=r, source_key="1", target_key="1", a=0, b=1, against=0, measure="margin",
                              effect=0.02, random_effect=0.01, p=0.2, q=0.3, rank=1, half="held-out", samples=10,
                              claimed=False))
    for c in (0, 1):
        rows.add(m.Confuses(run_id=r, source_key="1", target_key=str(c), a=0, b=1, measure="turn-back", effect=0.2,
                            random_effect=0.01, p=0.1, q=0.3, rank=1, half="held-out", samples=2, claimed=False,
                            in_top_set=True, top_set_percentile=0.98, top_set_turned_back=1))
    rows.add(m.SharedBy(run_id=r, source_key="0", target_key="0", fraction=1.0, steps=[0, 1], groups=[0, 0], q=0.01))
    rows.add(m.SpecialisedTo(run_id=r, source_key="2", target_key="0", fraction=0.5, steps=[1], groups=[0], q=0.02))
    for test in DELETION_TESTS:
        key = f"{test['kind']}:{test['cls']}:{'' if test['other'] is None else test['other']}"
        rows.add(m.DeletionTest(run_id=r, key=key, name=key, area=0.5, **test))
        rows.add(m.Tests(run_id=r, source_key=key, target_key=str(test["cls"])))
        for k in test["prototypes"]:
            rows.add(m.Deletes(run_id=r, source_key=key, target_key=str(k)))
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
    for rank, (sid, intensity, positions, box) in enumerate(((10, 0.9, 1, [0, 1, 0, 1]), (12, 0.3, 2, [0, 0, 1, 0]))):
        rows.add(m.ExemplarOf(run_id=r, source_key=f"probe:{sid}", target_key="2", rank=rank, intensity=intensity,
                              presence=positions, box=box))
    return rows


@pytest.fixture(scope="module")
def store(graph_store):
    write_graph_rows(graph_store, tiny_rows(), RUN)
    yield graph_store
    delete_run(graph_store, RUN)


def ask(store, name: str, **params):  # type: ignore[no-untyped-def]
    return [row.model_dump() for row in questions.ask(store, name, run_id=RUN, **params)]


def test_class_drivers_at_a_step_read_that_step_of_the_list(store) -> None:
    none = dict(q=None, saliency_share=None, first_step=None, recurrence=None)
    assert ask(store, "class_drivers", cls=0, step=1) == [
        dict(rank=0, prototype=1, name="P1", beta=0.3, z=3.0, **none),
        dict(rank=1, prototype=2, name="P2", beta=0.2, z=2.0, **none)]
    assert [(r["prototype"], r["beta"]) for r in ask(store, "class_drivers", cls=0, step=0)] == [(0, 0.5), (1, 0.1)]
    assert ask(store, "class_drivers", cls=0, step=2) == []  # 2 steps: 0 and 1
    assert ask(store, "class_drivers", cls=0, step=-1) == []


def test_prototype_evolution_is_the_list(store) -> None:
    rows = ask(store, "prototype_evolution", k=2)
    assert [(r["cls"], r["name"], r["steps"], r["betas"], r["final_beta"]) for r in rows] == [
        (0, "cat", [0, 1], [0.05, 0.05], 0.05), (1, "dog", [0, 1], [-0.1, 0.5], 0.5)]
    assert [r["zs"] for r in rows] == [pytest.approx([0.5, 0.5]), pytest.approx([-1.0, 5.0])]
    assert [(r["beta"], r["q"]) for r in rows] == [pytest.approx((0.05, 0.03)), pytest.approx((0.2, 0.03))]
    assert [r["betas"] for r in ask(store, "prototype_evolution", k=2, scope="class")] == [[-0.2, 0.2], [0.1, -0.5]]


def test_sample_evidence_takes_the_most_intense_listed_prototype(store) -> None:
    (row,) = ask(store, "sample_evidence", sample=10)
    assert row.pop("beta_by_step") == [-0.1, 0.5]
    deletion = {name: row.pop(name) for name in list(row) if name.startswith("deletion") or name == "runner_up"}
    assert deletion == dict(deletion_relation=None, runner_up=None, deletion_prototypes=[], deletion_names=[],
                            deletion_predicted_drops=[], deletion_runner_up_drops=[], deletion_qs=[],
                            deletion_formed_at=[])  # no reliance check in this graph
    assert row == pytest.approx(dict(sample=10, label=0, predicted=1, prototype=2, name="P2", intensity=0.9,
                                     positions=1, beta=0.2, q=0.03))
    (tie,) = ask(store, "sample_evidence", sample=12)  # P1 and P2 both 0.3: the smaller index
    assert (tie["prototype"], tie["predicted"], tie["positions"]) == (1, 0, 2)
    assert tie["beta"] == pytest.approx(-0.1)


def test_misclassified_evidence_reads_the_pooled_beta(store) -> None:
    # Sample 10 (cat, predicted dog): P0's pooled β toward dog is −0.2, P2's is +0.2 → only P2.
    (row,) = ask(store, "misclassified_evidence", sample=10)
    assert row == pytest.approx(dict(sample=10, label=0, predicted=1, prototype=2, name="P2", positions=1,
                                     intensity=0.9, beta_wrong=0.2, q_wrong=0.03, beta_true=0.05, push=0.18))
    # Sample 12 (dog, predicted cat): P1 toward cat −0.1 (left out), P2 toward cat +0.05.
    assert [(r["prototype"], round(r["push"], 12)) for r in ask(store, "misclassified_evidence", sample=12)] == [
        (2, 0.015)]


def test_most_confused_reads_the_final_count(store) -> None:
    # Final checkpoint: cat→dog 2, dog→cat 0; P1 is uncertain there; of the misclassified samples only #12 has P1.
    # P0 is uncertain there too (lower score); of the misclassified samples only #10 has P0.
    # The pair's confuser (reliance, final model) is P1, in its top set, not claimed, on both rows.
    confusers = dict(relation="training dynamics (β)", confuser_relation="reliance, final model", confusers=[1],
                     confuser_names=["P1"], confuser_effects=[0.2], confuser_qs=[0.3], confuser_claimed=[False],
                     confuser_formed_at=[None], confuser_set_percentile=0.98, confuser_set_turned_back=1,
                     confuser_samples=2)
    assert ask(store, "most_confused") == [
        dict(a=0, b=1, confusions=2, confusion_rank=1, prototype=1, name="P1", flips=2, flip_steps=[0, 1], score=0.4, q=0.004,
             samples=[12], **confusers),
        dict(a=0, b=1, confusions=2, confusion_rank=1, prototype=0, name="P0", flips=1, flip_steps=[1], score=0.1,
             q=0.008, samples=[10], **confusers)]


def test_pair_reliance_lists_the_margin_edges_and_confusers(store) -> None:
    rows = ask(store, "pair_reliance", a=1, b=0)
    assert [(r["kind"], r["prototype"], r["favours"], r["against"], r["claimed"], r["formed_at"]) for r in rows] == [
        ("margin", 2, 0, 1, True, 2), ("confuser", 1, None, None, False, None)]
    assert [r["prototype"] for r in ask(store, "pair_reliance", a=0, b=1, claimed=True)] == [2]


def test_learning_groups_read_the_group_betas(store) -> None:
    assert ask(store, "learning_groups", cls=0, step=1) == [
        dict(group=-1, name="cat s1 g-1", size=2, noise=True, top_prototypes=[], top_betas=[]),
        dict(group=0, name="cat s1 g0", size=7, noise=False, top_prototypes=[2, 0], top_betas=[0.6, 0.3])]


def test_prototype_samples_find_the_listed_prototype(store) -> None:
    assert ask(store, "prototype_samples", k=1) == [
        dict(cls=0, name="cat", probe_samples=0, stored_samples=[], removed_for_curation=0),
        dict(cls=1, name="dog", probe_samples=2, stored_samples=["probe:11", "probe:12"], removed_for_curation=0)]


def test_class_drivers_over_all_steps_are_the_key_drivers_by_rank(store) -> None:
    assert ask(store, "class_drivers", cls=0) == [
        dict(rank=0, prototype=2, name="P2", beta=0.3, z=3.0, q=0.03, saliency_share=0.5, first_step=1, recurrence=None),
        dict(rank=1, prototype=0, name="P0", beta=0.5, z=5.0, q=0.05, saliency_share=0.4, first_step=0, recurrence=None)]
    assert [r["prototype"] for r in ask(store, "class_drivers", cls=0, top=1)] == [2]


def test_common_prototypes_are_drivers_of_both(store) -> None:
    expected = [dict(prototype=0, name="P0", beta_a=0.5, beta_b=0.2, q_a=0.05, q_b=0.02, first_step_a=0,
                     first_step_b=None)]
    assert ask(store, "common_prototypes", a=0, b=1) == expected
    assert [(r["beta_a"], r["beta_b"]) for r in ask(store, "common_prototypes", a=1, b=0)] == [(0.2, 0.5)]


def test_pair_separators_by_onset_in_either_order(store) -> None:
    expected = [
        dict(prototype=2, name="P2", favours=0, against=1, first_step=0, from_checkpoint=1, steps=[0, 1], margin=0.3,
             z=4.0, p=0.0001, q=0.001, recurrence=None, pair_separated_at=2),
        dict(prototype=1, name="P1", favours=1, against=0, first_step=1, from_checkpoint=2, steps=[1], margin=0.4,
             z=3.0, p=0.002, q=0.01, recurrence=None, pair_separated_at=2)]
    assert ask(store, "pair_separators", a=1, b=0) == expected
    assert ask(store, "pair_separators", a=0, b=1) == expected


def test_learning_order_ranks_the_separated_pairs(store) -> None:
    assert ask(store, "learning_order") == [
        dict(rank=1, a=0, b=1, name_a="cat", name_b="dog", separated_at=2, peak_confusion=9, final_confusion=2,
             confusion_by_checkpoint=[9, 4, 2], beta_separated_at=1,  # P2's SEPARATES window starts at step 0
             beta_relation="training dynamics (β): the first checkpoint of a SEPARATES window", margin_relied_at=2,
             margin_relation="reliance, final model: the first formation step of a claimed MARGIN_RELIES_ON edge")]


def test_uncertain_prototypes_by_score(store) -> None:
    rows = ask(store, "uncertain_prototypes", a=1, b=0)
    assert [(r["prototype"], r["flips"], r["flip_steps"], r["score"], r["q"]) for r in rows] == [
        (1, 2, [0, 1], 0.4, 0.004), (0, 1, [1], 0.1, 0.008)]
    assert (rows[0]["significant_steps"], rows[0]["signs"], rows[0]["magnitude"]) == ([0, 1], [1, -1], 0.2)


def test_shared_prototypes_before_specialised(store) -> None:
    assert ask(store, "shared_prototypes", cls=0) == [
        dict(prototype=0, name="P0", kind="shared", fraction=1.0, q=0.01, groups=[[0, 0], [1, 0]]),
        dict(prototype=2, name="P2", kind="specialised", fraction=0.5, q=0.02, groups=[[1, 0]])]
    assert ask(store, "shared_prototypes", cls=1) == []


def test_faithfulness_lists_the_deletion_tests(store) -> None:
    drivers, separators = ({k: v for k, v in t.items() if k != "static_prototypes"} for t in DELETION_TESTS)
    assert ask(store, "faithfulness") == [dict(drivers, name="cat"), dict(separators, name="dog")]
    assert ask(store, "faithfulness", kind="separators") == [dict(separators, name="dog")]
    assert ask(store, "faithfulness", kind="uncertain") == []


def test_prototype_exemplars_by_rank(store) -> None:
    assert ask(store, "prototype_exemplars", k=2) == [
        dict(rank=0, sample=10, label=0, prediction=1, intensity=0.9, positions=1, box=[0, 1, 0, 1], image_uri=None),
        dict(rank=1, sample=12, label=1, prediction=0, intensity=0.3, positions=2, box=[0, 0, 1, 0], image_uri=None)]
    assert ask(store, "prototype_exemplars", k=0) == []
