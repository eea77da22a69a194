"""The chooser: the fastest validated file whose whole 95% interval of the drop lies within the bound."""
from __future__ import annotations

import json

import pytest

from edgekit.shrinker.report import Candidate, ShrinkReport, arm64_summary, choose, html, markdown, to_json


def cand(name, ms, interval, verdict, status="validated", model="student", size=10.0):
    lo, hi = interval
    return Candidate(model=model, precision=name, buckets=[128, 256, 384], artifact=f"files/{name}.tflite",
                     status=status, size_mb=size, metric=70.0 - (lo + hi) / 2, delta=-(lo + hi) / 2,
                     interval=[lo, hi], verdict=verdict, same_answer=0.9, ms_per_question=ms)


def constructed():
    return [
        cand("baseline", 100.0, (0.0, 0.0), "pass", model="teacher", size=90.0),
        cand("slow-pass", 40.0, (0.2, 1.5), "pass"),
        cand("mid-pass", 20.0, (0.5, 1.9), "pass"),                     # the answer
        cand("fast-undecided", 10.0, (0.9, 2.6), "undecided"),          # point 1.75 inside, interval crosses 2
        cand("faster-fail", 8.0, (2.2, 3.0), "fail"),
        cand("fastest-broken", 5.0, (0.0, 0.1), "pass", status="parity-failed"),
    ]


def test_chooses_the_fastest_within_the_bound_not_by_the_point():
    best, why = choose(constructed(), 2.0, n=200)
    assert best.precision == "mid-pass"
    assert "fast-undecided" in why and "undecided at 200" in why
    assert "faster-fail" in why and "parity-failed" in why


def test_nothing_within_the_bound_chooses_nothing_and_says_why():
    cs = [cand("u", 10.0, (0.5, 2.5), "undecided"), cand("f", 5.0, (3.0, 4.0), "fail")]
    best, why = choose(cs, 2.0, n=50)
    assert best is None and "undecided at 50" in why and "evaluate more" in why


def test_a_file_undecided_on_all_of_dev_is_not_sent_to_evaluate_more():
    cs = [cand("u", 10.0, (0.5, 2.5), "undecided"), cand("v", 5.0, (0.4, 2.4), "undecided")]
    cs[0].n = 500  # scored on all of DEV
    cs[1].n = 250
    best, why = choose(cs, 2.0, n=100, n_all=500)
    assert best is None
    assert "u (undecided on all 500 DEV questions)" in why.replace("student ", "").replace(" buckets 128,256,384", "")
    assert "undecided at 250 — evaluate more questions" in why


def test_untimed_files_are_not_chosen():
    cs = constructed()
    cs[2].ms_per_question = None
    assert choose(cs, 2.0)[0].precision == "slow-pass"


def test_report_renders_every_candidate_in_every_format():
    cs = constructed()
    best, why = choose(cs, 2.0)
    rep = ShrinkReport(task="question-answering", metric="f1", target="tflite", teacher="t", student="s", out="o",
                       max_drop=2.0, n_dev=200, teacher_metric=70.0, candidates=cs, chosen=best.artifact, reason=why)
    md = markdown(rep)
    for c in cs:
        assert c.precision in md
    assert f"**Chosen: `{best.artifact}`**" in md and "fast-undecided buckets 128,256,384 (undecided — evaluate more" in md
    assert md.count("| 200 |") == len(cs)  # the DEV n column: the report's n for files scored on no more
    back = ShrinkReport.from_dict(json.loads(to_json(rep)))
    assert back.chosen_candidate.precision == "mid-pass" and len(back.candidates) == len(cs)
    page = html(rep)
    assert "<svg" in page and "mid-pass" in page
    assert "arm64" not in md.split("**Chosen")[0]  # no column when the run did not check on arm64
    assert "General distillation" not in md  # no general phase, no line
    # a report.json written before the general phase existed still reads
    old = json.loads(to_json(rep))
    old.pop("general")
    assert ShrinkReport.from_dict(old).general == {}


def test_the_report_names_the_general_distillation():
    cs = constructed()
    best, why = choose(cs, 2.0)
    rep = ShrinkReport(task="question-answering", metric="f1", target="tflite", teacher="t", student="s", out="o",
                       max_drop=2.0, n_dev=200, teacher_metric=70.0, candidates=cs, chosen=best.artifact, reason=why,
                       general={"done": True, "text": "wiki.txt.xz", "first_loss": 207.1, "final_loss": 4.2,
                                "card": {"steps": 1500, "batch_size": 32, "elapsed_s": 1899.0}})
    line = ("General distillation before the task: 1500 steps of 32 paragraphs of wiki.txt.xz (the teacher's final "
            "hidden states), 1899.0 s, loss 207 -> 4.2")
    assert line in markdown(rep) and line.replace("'", "&#x27;").replace(">", "&gt;") in html(rep)
    assert ShrinkReport.from_dict(json.loads(to_json(rep))).general["card"]["steps"] == 1500


def test_the_arm64_verdicts_are_a_column_of_the_report():
    ok = {"checked": True, "cpus": {"neoverse-n1": {"passed": True}, "max": {"passed": True}}}
    bad = {"checked": True, "cpus": {"neoverse-n1": {"passed": True},
                                     "max": {"passed": False, "failures": ["start_logits: cosine 0.91 < 0.99"]}}}
    assert arm64_summary(ok) == "✓ neoverse-n1, max"
    assert arm64_summary(bad) == "✗ max (start_logits: cosine 0.91 < 0.99)"
    assert arm64_summary({"checked": False, "reason": "no emulator"}) == "not checked (no emulator)"
    assert arm64_summary(None) is None
    cs = constructed()
    for c in cs:
        c.arm64 = arm64_summary(ok)
    cs[-1].arm64 = arm64_summary(bad)  # the parity-failed file: never chosen
    best, why = choose(cs, 2.0)
    rep = ShrinkReport(task="question-answering", metric="f1", target="tflite", teacher="t", student="s", out="o",
                       max_drop=2.0, n_dev=200, teacher_metric=70.0, candidates=cs, chosen=best.artifact, reason=why)
    md = markdown(rep)
    header = next(line for line in md.splitlines() if line.startswith("| model"))
    assert header.endswith("| arm64 |") and md.count("✓ neoverse-n1, max") == len(cs) - 1
    assert "✗ max (start_logits" in md and "<td>✗ max" in html(rep)
    assert ShrinkReport.from_dict(json.loads(to_json(rep))).candidates[0].arm64 == "✓ neoverse-n1, max"


@pytest.mark.parametrize("drop,interval,want", [(0.5, (0.1, 0.9), "pass"), (1.5, (0.8, 2.3), "undecided"),
                                                (2.5, (2.1, 2.9), "fail")])
def test_verdict_is_the_gate_s(drop, interval, want):
    from edgekit.quality.gate import verdict

    assert verdict(drop, interval, 2.0) == want
