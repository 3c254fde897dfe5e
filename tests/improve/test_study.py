"""Step 9's fine-tuning schedules and table on the real digits run (2 seeds), and their bad-input errors."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch

from i2x_plugin.training.checkpoints import default_load_func
from i2x_plugin.training.data import load_digits_8x8
from i2x_plugin.improve.study import (SCHEDULES, ImproveConfig, ImproveError, ImproveResult, ScheduleRun, epoch_order,
                                improve, run_schedules)

CONFIG = ImproveConfig(seeds=2, lr=1e-3, min_positions="auto")  # 4×4 maps: ≥ 1 position can empty a class


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def split():
    """The digits run's training split, and a test split disjoint from it (the run's probe digits)."""
    data = load_digits_8x8()
    return data.subset(range(1200), "digits-train"), data.subset(range(1200, 1797), "digits-test")


@pytest.fixture(scope="module")
def outcome(digits_run, split, tmp_path_factory):
    train, test = split
    model = copy.deepcopy(digits_run.model)
    save_dir = tmp_path_factory.mktemp("finetuned")
    result, curation = improve(digits_run.explanation, model, train, test, CONFIG, save_dir=save_dir)
    return result, curation, model


def test_table_has_every_schedule_seed_and_the_paired_comparison(outcome):
    result, curation, _ = outcome
    data = json.loads(json.dumps(result.to_dict()))  # JSON-ready
    assert set(data["table"]) == set(SCHEDULES)
    for row in data["table"].values():
        assert len(row["accuracy_pct"]["values"]) == 2 and len(row["confusions"]["values"]) == 2
        assert row["accuracy_pct"]["std"] >= 0 and 0 <= row["accuracy_pct"]["mean"] <= 100
    assert len(result.runs) == 2 * len(SCHEDULES)
    guided = {r.seed: r for r in result.of("curated->full")}
    for key, control in (("comparison", "random->full"), ("comparison_full", "full->full")):
        comp, base = data[key], {r.seed: r for r in result.of(control)}
        assert comp["control"] == control
        assert comp["confusions"]["differences"] == [guided[s].confusions - base[s].confusions for s in (0, 1)]
        assert comp["accuracy_pct"]["wins"] + comp["accuracy_pct"]["losses"] + comp["accuracy_pct"]["ties"] == 2
        # Two seeds: the differences are shown, no p-value is claimed.
        assert comp["confusions"]["t_test_p"] is None and "not tested: 2 paired seeds" in comp["confusions"]["significance"]
        assert comp["pair_loss"]["treatment"]["mean"] > 0
    assert "not tested: 2 paired seeds (< 5)" in data["verdict"]["text"]
    assert data["curation"]["removed"] == len(curation.removed) and data["curation"]["pair"] == list(curation.target.pair)
    assert data["verdict"]["text"] and isinstance(data["verdict"]["helped"], bool)
    text = result.format_table()
    assert "curated→full" in text and "full→full" in text and "start (final checkpoint)" in text
    assert "<table>" in result.to_html() and "| curated→full (2 ep) |" in result.to_markdown()
    for run in result.runs:  # every fine-tuned model was saved with its sidecar
        meta = json.loads(open(run.checkpoint.replace(".pt", ".json")).read())
        assert meta["schedule"] == run.schedule and meta["seed"] == run.seed and meta["accuracy"] == run.accuracy


def test_schedules_are_deterministic_per_seed_and_reuse_prefixes_exactly(digits_run, split, outcome):
    train, test = split
    result, curation, model = outcome
    checkpoint = digits_run.explanation.checkpoints[-1].path
    rng_before = torch.get_rng_state()
    again, _ = run_schedules(model, checkpoint, train, test, curation, CONFIG, seeds=[1])
    assert torch.equal(torch.get_rng_state(), rng_before)  # seeded locally: the caller's RNG goes on untouched
    assert [dataclasses.replace(r, checkpoint=None) for r in result.runs if r.seed == 1] == again
    # curated->full alone (no shared prefix to reuse) equals the one computed after 'curated'.
    alone, _ = run_schedules(model, checkpoint, train, test, curation,
                             CONFIG.model_copy(update={"schedules": ("curated->full",)}), seeds=[0])
    assert alone == [dataclasses.replace(r, checkpoint=None) for r in result.of("curated->full")[:1]]
    # Seeds differ; a curated epoch is the full epoch's order with the removed samples skipped.
    assert not torch.equal(epoch_order(len(train), 0, 0), epoch_order(len(train), 1, 0))
    full, cur = epoch_order(len(train), 0, 1), epoch_order(len(train), 0, 1, curation.keep_mask)
    assert torch.equal(full[curation.keep_mask[full.numpy()]], cur)


def test_start_row_is_the_final_checkpoint(outcome, split, digits_run):
    result, curation, model = outcome
    _, test = split
    default_load_func(model, digits_run.explanation.checkpoints[-1].path)
    with torch.no_grad():
        preds = model(test.images).argmax(1)
    assert result.start.accuracy == pytest.approx(float((preds == test.labels).float().mean()))
    a, b = curation.target.pair
    y = test.labels
    assert result.start.confusions == int(((y == a) & (preds == b)).sum() + ((y == b) & (preds == a)).sum())


def test_the_verdict_says_plainly_when_curated_full_did_not_help():
    def runs(schedule, accs, confs):
        return [ScheduleRun(schedule, s, a, c, 0) for s, (a, c) in enumerate(zip(accs, confs))]

    result = ImproveResult(
        run_id="x", dataset="d", model_name="m",
        config=ImproveConfig(seeds=5, schedules=("full->full", "curated->full", "random->full")),
        curation={"pair": [2, 7], "pair_names": ["2", "7"], "prototypes": [4], "removed": 10, "train_size": 100,
                  "min_positions": 1, "variant": "V0"},
        start=ScheduleRun("start", -1, 0.9, 5, 5),
        runs=runs("full->full", [0.95, 0.96, 0.94, 0.95, 0.95], [3, 2, 4, 3, 3])
        + runs("random->full", [0.95, 0.96, 0.94, 0.95, 0.95], [3, 3, 4, 2, 3])
        + runs("curated->full", [0.94, 0.95, 0.94, 0.95, 0.94], [5, 4, 4, 5, 4]),
        train_size=100, test_size=50)
    verdict = result.verdict()
    assert verdict["helped"] is False and verdict["fewer_than_random"] is False
    assert "curated→full (V0) did NOT beat random removal and full→full" in verdict["text"]
    assert "vs random→full: not fewer 2↔7 confusions" in verdict["text"] and "paired t-test p = " in verdict["text"]
    assert "did NOT beat" in result.format_table()
    assert result.comparison()["confusions"]["differences"] == [2.0, 1.0, 0.0, 3.0, 1.0]
    assert result.comparison("full->full")["confusions"]["differences"] == [2.0, 2.0, 0.0, 2.0, 1.0]


def test_test_split_overlapping_the_training_set_is_refused(digits_run, split):
    train, _ = split
    leaky = load_digits_8x8().subset(range(1100, 1300), "leaky-test")
    with pytest.raises(ImproveError, match="overlaps the training set: 100 of its 200"):
        improve(digits_run.explanation, copy.deepcopy(digits_run.model), train, leaky, CONFIG)


def test_a_frozen_model_cannot_be_fine_tuned(digits_run, split):
    train, test = split
    frozen = copy.deepcopy(digits_run.model).requires_grad_(False)
    with pytest.raises(ImproveError, match="all .* parameter tensors are frozen .*requires_grad_"):
        improve(digits_run.explanation, frozen, train, test, CONFIG)


def test_a_curated_set_for_another_training_set_is_refused(digits_run, split, outcome):
    train, test = split
    _, curation, model = outcome
    with pytest.raises(ImproveError, match="another training set"):
        run_schedules(model, digits_run.explanation.checkpoints[-1].path, train.subset(range(100)), test, curation,
                      CONFIG)


def test_config_rejects_unknown_schedules_and_single_seed():
    with pytest.raises(ValueError, match="unknown schedule"):
        ImproveConfig(schedules=("full->curated->full",))
    with pytest.raises(ValueError):
        ImproveConfig(seeds=1)


# --- the CLI verb on a saved 'i2x run' directory ----------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(digits_run, tmp_path_factory):
    """A real 'i2x run' output (digits, the digits run's checkpoints, no graph) with a stand-in report page
    (the report's own tests cover the real page; here only the added section matters, and plots cost time)."""
    from i2x_plugin import I2XConfig
    from i2x_plugin.app.run import RunConfig, run_main

    out = tmp_path_factory.mktemp("runs")
    run_main(RunConfig(dataset="digits", checkpoints=digits_run.checkpoint_dir, store="none", report=False, out=out,
                       run_id="r", i2x=I2XConfig(k=12)), progress=False)
    (out / "r" / "report").mkdir()
    (out / "r" / "report" / "index.html").write_text("<html><body><main><h1>run r</h1></main></body></html>")
    return out / "r"


def test_cli_improve_on_a_saved_run_prints_and_writes_the_table(run_dir, capsys):
    from i2x_plugin.cli import main

    code = main(["improve", "--run-dir", str(run_dir), "--seeds", "2", "--min-positions", "auto", "--store", "none",
                 "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "curated→full" in out and "full→full" in out and "written:" in out
    data = json.loads((run_dir / "improve" / "improve.json").read_text())
    assert set(data["table"]) == set(SCHEDULES) and data["config"]["seeds"] == 2
    assert data["train_size"] + data["test_size"] == 1797  # the run's own split of the digits
    assert (run_dir / "improve" / "improve.html").read_text().startswith('<div class="i2x-improve">')
    assert "| curated→full (2 ep) |" in (run_dir / "improve" / "improve.md").read_text()
    assert len(list((run_dir / "improve" / "finetuned").glob("*.pt"))) == 2 * len(SCHEDULES)
    page = (run_dir / "report" / "index.html").read_text()  # the table joined the run's report, once
    assert page.count('<section id="improve">') == 1 and "curated→full (2 ep)" in page


def test_cli_improve_errors_name_the_fix(tmp_path, run_dir, capsys):
    from i2x_plugin.cli import main

    assert main(["improve"]) == 2
    assert "--run-dir" in capsys.readouterr().err
    assert main(["improve", "--run-dir", str(tmp_path), "--store", "none"]) == 2
    assert "not a complete 'i2x run' output directory" in capsys.readouterr().err
    # A variant that finds nothing says so; no table is made up.
    out = tmp_path / "none-found"
    assert main(["improve", "--run-dir", str(run_dir), "--variant", "V1", "--cap", "0.0001", "--store", "none",
                 "--quiet", "--out", str(out)]) == 2
    assert "V1 for" in (err := capsys.readouterr().err) and "found no samples" in err
    assert not (out / "improve.json").exists()


# --- the graph: the CurationSet and the fine-tuned checkpoints ---------------------------------------------


def test_graph_holds_the_curation_set_and_fine_tuned_checkpoints(graph_store, digits_run, outcome):
    from i2x_plugin.improve.graph import curation_key, write_improvement
    from i2x_plugin.graph.ingest import write_explanation
    from i2x_plugin.graph.questions import ask

    result, curation, _ = outcome
    explanation = dataclasses.replace(digits_run.explanation, run_id="improve-graph")
    with pytest.raises(ValueError, match="not in the graph store"):
        write_improvement(graph_store, explanation, curation, result)
    write_explanation(graph_store, explanation)
    counts = write_improvement(graph_store, explanation, curation, result)
    assert counts["removed"] == len(curation.removed) and counts["checkpoints"] == len(result.runs)

    rows = graph_store.read(
        "MATCH (cs:CurationSet {runId: $r})-[:REMOVES]->(s:Sample {split: 'train'}) "
        "RETURN cs.key AS key, cs.pair AS pair, cs.prototypes AS prototypes, cs.threshold AS threshold, "
        "collect(s.sampleId) AS ids, collect(s.label) AS labels", r="improve-graph")
    assert len(rows) == 1
    row = rows[0]
    assert row["key"] == curation_key(curation) and row["pair"] == list(curation.target.pair)
    assert row["prototypes"] == list(curation.target.prototypes) and row["threshold"] == curation.min_positions
    assert sorted(row["ids"]) == sorted(curation.removed_ids().tolist())
    assert set(row["labels"]) <= set(curation.target.pair)
    pair = graph_store.read("MATCH (:CurationSet {runId: $r})-[:FOR_PAIR]->(c:Class) RETURN c.index AS c",
                            r="improve-graph")
    assert sorted(p["c"] for p in pair) == sorted(curation.target.pair)

    tuned = graph_store.read(
        "MATCH (c:Checkpoint {runId: $r})-[f:FINE_TUNED_FROM]->(src:Checkpoint) "
        "RETURN c.schedule AS schedule, c.seed AS seed, c.path AS path, f.schedule AS via, src.index AS src, "
        "c.testAccuracy AS accuracy, c.pairConfusions AS confusions", r="improve-graph")
    assert sorted((t["schedule"], t["seed"], t["accuracy"], t["confusions"]) for t in tuned) == sorted(
        (r.schedule, r.seed, r.accuracy, r.confusions) for r in result.runs)
    assert all(t["src"] == explanation.checkpoints[-1].index and t["via"] == t["schedule"] for t in tuned)
    assert {t["path"] for t in tuned} == {r.checkpoint for r in result.runs}

    # Question 10 counts the removed training samples per class; writing again changes nothing.
    answer = ask(graph_store, "prototype_samples", run_id="improve-graph", k=curation.target.prototypes[0])
    removed = {r.cls: r.removed_for_curation for r in answer.rows}
    assert {c: removed[c] for c in curation.target.pair} == curation.removed_per_class
    write_improvement(graph_store, explanation, curation, result)
    again = graph_store.read("MATCH (s:Sample {runId: $r, split: 'train'}) RETURN count(s) AS n", r="improve-graph")
    assert again[0]["n"] == len(curation.removed)

    # Another variant of the same run is its own CurationSet beside the first.
    margin = dataclasses.replace(curation, variant="V4", min_positions=None, cap=0.1, rule="smallest margin",
                                 target=dataclasses.replace(curation.target, uncertain=()))
    write_improvement(graph_store, explanation, margin, dataclasses.replace(result, runs=[]))
    sets = graph_store.read("MATCH (cs:CurationSet {runId: $r}) RETURN cs.variant AS v, cs.cap AS cap, "
                            "cs.threshold AS m ORDER BY v", r="improve-graph")
    assert [(r["v"], r["cap"], r["m"]) for r in sets] == [(curation.variant, curation.cap, curation.min_positions),
                                                          ("V4", 0.1, None)]


def test_cli_improve_records_the_run_in_the_graph(run_dir, store_server, graph_store, capsys, request):
    from i2x_plugin import StructuredExplanation
    from i2x_plugin.cli import main
    from i2x_plugin.graph.ingest import write_explanation

    if request.node.callspec.params.get("graph_store") != "embedded":
        pytest.skip("the CLI is pointed at the embedded server here")
    write_explanation(graph_store, StructuredExplanation.load(run_dir / "explanation"))  # what 'i2x run' does with a store
    code = main(["improve", "--run-dir", str(run_dir), "--seeds", "2", "--min-positions", "auto", "--quiet",
                 "--store", "embedded", "--store-dir", str(store_server.data_dir), "--no-save-checkpoints",
                 "--out", str(run_dir / "improve-graph")])
    out = capsys.readouterr().out
    assert code == 0 and "CurationSet" in out, out
    rows = graph_store.read("MATCH (c:Checkpoint {runId: 'r'})-[:FINE_TUNED_FROM]->() RETURN count(c) AS n")
    assert rows[0]["n"] == 2 * len(SCHEDULES)
    removed = json.loads((run_dir / "improve-graph" / "improve.json").read_text())["curation"]["removed"]
    rows = graph_store.read("MATCH (:CurationSet {runId: 'r'})-[:REMOVES]->(s:Sample) RETURN count(s) AS n")
    assert rows[0]["n"] == removed
