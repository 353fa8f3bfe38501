"""Scoring against hand-computed cases, aggregation rules, baselines, file validation and the eval commands."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.eval import report as report_module
from vlm3r.eval.baselines import frequency_baseline, frequency_predictions, random_baseline
from vlm3r.eval.files import chance_rows, score_files
from vlm3r.eval.loading import PredictionError, load_predictions, load_questions
from vlm3r.eval.metrics import exact_match, fuzzy_match, mean_relative_accuracy
from vlm3r.eval.scoring import score
from vlm3r.qa.benchmarks import VSIBENCH, VSTIBENCH
from vlm3r.qa.export import write_parquet
from vlm3r.qa.generate import generate, load_scenes
from vlm3r.qa.record import QARecord, write_qa_jsonl
from vlm3r.qa.tasks import answer_kind, select_tasks


@pytest.mark.parametrize("prediction, expected", [
    ("B", "B"), ("B.", "B"), ("B. right", "B"), (" B", ""), ("2.5 meters", "2.5"), ("", ""), ("left.", "left")])
def test_fuzzy_match(prediction, expected):
    assert fuzzy_match(prediction) == expected


def test_exact_match():
    assert exact_match("b.", "B") == 1.0 and exact_match("B. right", "B") == 1.0
    assert exact_match("C", "B") == 0.0 and exact_match("", "B") == 0.0 and exact_match("The answer is B", "B") == 0.0


@pytest.mark.parametrize("prediction, target, expected", [
    ("2.5", 2.5, 1.0),
    ("2.5 meters", 2.5, 1.0),
    ("2.5m", 2.5, 0.0),  # not a number once the first token is taken
    ("about 2.5", 2.5, 0.0),
    ("", 2.5, 0.0),
    ("none", 2.5, 0.0),
    # relative error 0.2: theta 0.50..0.75 pass; 0.80 fails because 1 - 0.8 is 0.19999999999999996 in floating
    # point, as in the reference's numpy code
    ("2.0", 2.5, 0.6),
    ("1.25", 2.5, 0.1),  # relative error exactly 0.5: only theta 0.5, and only because the code uses <=
    ("2.625", 2.5, 1.0),  # relative error 0.05 passes theta 0.95 (1 - 0.95 is 0.05000000000000004)
    ("0", 2.5, 0.0),
    ("-2.5", 2.5, 0.0),
    ("12", 10, 0.6),
    ("11", 10, 0.9),  # relative error 0.1: theta 0.50..0.90 pass (1 - 0.9 is 0.10000000000000009)
])
def test_mean_relative_accuracy(prediction, target, expected):
    assert mean_relative_accuracy(prediction, target) == pytest.approx(expected)


def record(i, question_type, ground_truth, options=("A. x", "B. y", "C. z", "D. w"), mc_answer="A"):
    kind = answer_kind(question_type)
    return QARecord(i, "test", f"s{i % 3}", "v.mp4", question_type, f"q{i}", list(options), ground_truth,
                    mc_answer if kind == "mca" else None)


def test_vsibench_merges_directions_before_the_overall_mean():
    questions = [record(0, "object_rel_direction_easy", "left", ["A. left", "B. right"]),
                 record(1, "object_rel_direction_medium", "left", ["A. left", "B. right", "C. back"]),
                 record(2, "object_rel_direction_medium", "left", ["A. left", "B. right", "C. back"]),
                 record(3, "object_rel_direction_hard", "front-left"),
                 record(4, "object_counting", 4), record(5, "route_planning", "Turn Left")]
    predictions = {"0": "A", "1": "A", "2": "B", "3": "D", "4": "5", "5": "A"}
    report = score(VSIBENCH, questions, predictions)
    assert report.per_question_type["object_rel_direction_medium"] == 50.0
    # (100 + 50 + 0) / 3 merged; counting: |5 - 4| / 4 = 0.25 -> 6 of 10 thresholds
    assert report.per_task == {"object_counting": pytest.approx(60.0), "object_rel_direction": pytest.approx(50.0),
                               "route_planning": 100.0}
    assert report.overall == pytest.approx((60 + 50 + 100) / 3)
    assert report.n == 6


def test_vstibench_plain_mean_and_paper_columns():
    questions = [record(0, "obj_obj_relative_pos_nf", "Near", ["A. Near", "B. Far"]),
                 record(1, "obj_obj_relative_pos_lr", "Left", ["A. Left", "B. Right"]),
                 record(2, "camera_displacement", 2.0, [1.0, 2.0, 3.0, 4.0], "B")]
    report = score(VSTIBENCH, questions, {"0": "A", "1": "B", "2": "2.0"})
    assert report.per_task == {"camera_displacement": 100.0, "obj_obj_relative_pos_nf": 100.0,
                               "obj_obj_relative_pos_lr": 0.0}
    assert report.overall == pytest.approx(200 / 3)
    assert report.columns == {"Cam. Displace.": 100.0, "Obj-Obj Rel. Pos.": 50.0}
    assert report.paper_average == 75.0


def test_vstibench_paper_average_is_over_the_paper_columns_only(tmp_path):
    """The paper's VSTI-Bench "Avg." has no Cam-Obj Dist. Change column: ours is averaged the same way, and the
    report puts the paper's 58.8 beside it, not beside the code's overall."""
    from vlm3r.eval.report import write_report
    from vlm3r.eval.scoring import paper_report

    questions = [record(0, "obj_obj_relative_pos_nf", "Near", ["A. Near", "B. Far"]),
                 record(1, "camera_displacement", 2.0, [1.0, 2.0, 3.0, 4.0], "B"),
                 record(2, "camera_obj_dist_change", 1.0, [0.5, 1.0, 1.5, 2.0], "B")]
    report = score(VSTIBENCH, questions, {"0": "B", "1": "2.0", "2": "1.0"})
    assert report.columns == {"Cam. Displace.": 100.0, "Cam-Obj Dist. Change": 100.0, "Obj-Obj Rel. Pos.": 0.0}
    assert report.overall == pytest.approx(200 / 3) and report.paper_average == 50.0
    paper = paper_report(VSTIBENCH)
    assert (paper.overall, paper.paper_average) == (None, 58.8)
    lines = write_report(tmp_path, report, {"paper VLM-3R": paper}, "t").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| | overall |"))
    assert header.split(" | ")[1:3] == ["overall", "avg. of the paper's columns"]
    assert next(line for line in lines if line.startswith("| model |")).split(" | ")[1:3] == ["66.7", "50.0"]
    assert next(line for line in lines if line.startswith("| paper VLM-3R |")).split(" | ")[1:3] == ["-", "58.8"]


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_perfect_predictions_score_100(qa_records, data):
    predictions = {}
    for q in qa_records:
        if answer_kind(q.question_type) == "mca":
            predictions[str(q.id)] = data.draw(st.sampled_from([q.mc_answer, q.mc_answer + ".",
                                                                q.mc_answer.lower(), f"{q.mc_answer}. whatever"]))
        else:
            predictions[str(q.id)] = data.draw(st.sampled_from([str(q.ground_truth), f"{q.ground_truth} meters"]))
    for benchmark in (VSIBENCH, VSTIBENCH):
        report = score(benchmark, qa_records, predictions)
        assert report.overall == 100.0 and all(v == 100.0 for v in report.per_task.values())


@pytest.fixture(scope="module")
def qa_records(qa_synthetic):
    return generate(load_scenes(qa_synthetic), select_tasks("all"), seed=1)[0]


def test_random_baseline_by_hand():
    questions = [record(0, "object_rel_direction_easy", "left", ["A. left", "B. right"]),
                 record(1, "object_rel_direction_medium", "left", ["A. left", "B. right", "C. back"]),
                 record(2, "object_rel_direction_hard", "front-left"), record(3, "object_rel_distance", "tv"),
                 record(4, "object_counting", 3)]
    report = random_baseline(VSIBENCH, questions)
    assert report.per_task["object_rel_direction"] == pytest.approx(100 * (1 / 2 + 1 / 3 + 1 / 4) / 3)  # 36.1
    assert report.per_task["object_rel_distance"] == 25.0
    assert report.per_task["object_counting"] is None and report.overall is None


def test_frequency_baseline_by_hand():
    questions = [record(0, "object_rel_direction_easy", "left", ["A. left", "B. right"], "A"),
                 record(1, "object_rel_direction_easy", "left", ["A. right", "B. left"], "B"),
                 record(2, "object_rel_direction_easy", "right", ["A. left", "B. right"], "B"),
                 record(3, "object_size_estimation", 100), record(4, "object_size_estimation", 200),
                 record(5, "object_counting", 2), record(6, "object_counting", 2), record(7, "object_counting", 5)]
    predictions = frequency_predictions(questions)
    # "left" is the most frequent answer: its letter wherever it is offered.
    assert [predictions[str(i)] for i in range(3)] == ["A", "B", "A"]
    assert predictions["3"] == predictions["4"] == "150"  # the mean size
    assert predictions["5"] == "2"  # the most frequent count
    report = frequency_baseline(VSIBENCH, questions)
    assert report.per_question_type["object_rel_direction_easy"] == pytest.approx(200 / 3)


def test_prediction_file_errors(tmp_path):
    questions = [record(i, "object_counting", 3) for i in range(3)]
    path = tmp_path / "pred.jsonl"

    def check(lines, message):
        path.write_text("".join(json.dumps(x) + "\n" if not isinstance(x, str) else x + "\n" for x in lines))
        with pytest.raises(PredictionError, match=message):
            load_predictions(path, questions)

    check([{"id": 0, "prediction": "3"}, {"id": 1, "prediction": "3"}], r"1 question\(s\) have no prediction")
    check([{"id": i, "prediction": "3"} for i in (0, 1, 2, 1)], "id 1 appears twice")
    check([{"id": i, "prediction": "3"} for i in (0, 1, 2, 9)], r"1 id\(s\) not in the question file")
    check([{"id": 0, "prediction": 3}], "prediction must be text")
    check(["{broken"], "line 1: not valid JSON")
    check([{"id": 0}], "line 1: expected")
    with pytest.raises(PredictionError, match="no such file"):
        load_predictions(tmp_path / "none.jsonl", questions)
    path.write_text("".join(json.dumps({"id": str(i), "prediction": "3"}) + "\n" for i in range(3)))
    assert load_predictions(path, questions) == {"0": "3", "1": "3", "2": "3"}  # "0" matches 0


def test_public_layouts_score_like_jsonl(qa_records, tmp_path):
    predictions = {str(q.id): "A" if answer_kind(q.question_type) == "mca" else "1.5" for q in qa_records}
    write_parquet(tmp_path / "vsi.parquet", qa_records, bench="vsi")
    write_parquet(tmp_path / "vsti.parquet", qa_records, bench="vsti")
    for bench_file, benchmark in (("vsi.parquet", VSIBENCH), ("vsti.parquet", VSTIBENCH)):
        public = load_questions(tmp_path / bench_file)
        subset = {str(q.id): predictions[str(q.id)] for q in public}
        assert score(benchmark, public, subset).to_json()["per_task"] == \
            score(benchmark, qa_records, predictions).to_json()["per_task"]
    (tmp_path / "ref.json").write_text(json.dumps([q.to_dict() for q in qa_records]))
    assert len(load_questions(tmp_path / "ref.json")) == len(qa_records)


runner = CliRunner()


def test_cli_score_and_baseline(qa_records, tmp_path):
    qa = tmp_path / "qa.jsonl"
    write_qa_jsonl(qa, qa_records)
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps({"id": q.id, "prediction": q.mc_answer or ""}) + "\n" for q in qa_records))
    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "score", "--bench", "vsibench", "--qa", str(qa), "--pred", str(pred),
                                 "--out", str(out)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "scores.json").read_text())
    # Multiple-choice questions answered with their letter score 100, numeric ones left empty 0; VSI-Bench merges
    # the three relative-direction types into one task, then takes the mean over its eight tasks: 4 x 100 / 8.
    multiple_choice = {"object_rel_distance", "object_rel_direction", "route_planning", "obj_appearance_order"}
    numeric = {"object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation"}
    assert scores["per_task"] == {t: (100.0 if t in multiple_choice else 0.0) for t in multiple_choice | numeric}
    assert scores["overall"] == 50.0
    directions = {f"object_rel_direction_{level}" for level in ("easy", "medium", "hard")}
    vsi_types = (multiple_choice - {"object_rel_direction"}) | directions | numeric
    assert scores["n"] == sum(1 for q in qa_records if q.question_type in vsi_types)
    # the plots draw exactly these scores: redrawn from them they are the written images, pixel for pixel
    report = score_files("vsibench", qa, pred)
    rows = {"model": report, **chance_rows(VSIBENCH, load_questions(qa))}
    bars = report_module._plot_bars(tmp_path / "tasks.png", rows, list(report.columns))
    assert [bar.get_height() for bar in bars.axes[0].containers[0]] == list(report.columns.values())
    assert sorted(set(report.columns.values())) == [0.0, 100.0]
    curves = report_module._plot_mra(tmp_path / "mra.png", report)
    assert [list(line.get_ydata()) for line in curves.axes[0].get_lines()] == \
        [list(curve) for curve in report.mra_curves.values()]
    for name in ("tasks.png", "mra.png"):
        with Image.open(out / name) as written, Image.open(tmp_path / name) as redrawn:
            assert np.array_equal(np.asarray(written), np.asarray(redrawn))
    assert "| random |" in (out / "report.md").read_text()
    result = runner.invoke(app, ["eval", "baseline", "--bench", "vstibench", "--qa", str(qa), "--kind", "frequency",
                                 "--out", str(tmp_path / "freq")], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    freq_pred = tmp_path / "freq" / "predictions.jsonl"
    assert freq_pred.exists()
    pred.write_text(pred.read_text().splitlines()[0] + "\n")
    result = runner.invoke(app, ["eval", "score", "--bench", "vsibench", "--qa", str(qa), "--pred", str(pred)],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 1 and "have no prediction" in result.output
