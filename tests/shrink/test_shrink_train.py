"""The checkpoint a shrink run keeps (``shrinker.train.choose``), and a finished run chosen by the older
rule decided again on resume (``decide_again``); no training here."""
from __future__ import annotations

import random

from edgekit.shrinker.train import RULE, choose, decide_again


def _ck(step: int, each: list[float]) -> dict:
    return {"step": step, "score": round(sum(each) / len(each), 3), "each": each}


def _noisy(n: int, mean: float, seed: int) -> list[float]:
    r = random.Random(seed)
    return [min(100.0, max(0.0, r.gauss(mean, 30))) for _ in range(n)]


def test_the_end_of_the_schedule_is_kept_when_an_earlier_lead_is_noise():
    # 103 questions, an earlier checkpoint 2 points ahead by its mean: inside the sampling error (the shared
    # model's third run kept such a checkpoint by its point score, and it was worse on all of DEV)
    end = _noisy(103, 65, 1)
    earlier = [x + (6.0 if i % 3 == 0 else 0.0) for i, x in enumerate(_noisy(103, 65, 1))]
    earlier = [e + random.Random(i).gauss(0, 20) for i, e in enumerate(earlier)]
    scores = [_ck(761, _noisy(103, 55, 3)), _ck(2283, earlier), _ck(3044, end)]
    assert scores[1]["score"] > scores[2]["score"]  # the point score alone would keep step 2283
    step, why = choose(scores, 3044)
    assert step == 3044 and "no earlier checkpoint beats it" in why and "step 2283" in why


def test_an_earlier_checkpoint_that_beats_the_end_beyond_its_interval_is_kept():
    end = _noisy(1000, 60, 1)
    better = [min(100.0, x + 8.0) for x in end]  # 8 points better on most questions: a clear lead
    step, why = choose([_ck(1000, better), _ck(2000, end)], 2000)
    assert step == 1000 and "beats the end of the schedule" in why
    # a tie goes to the end of the schedule
    assert choose([_ck(1000, end), _ck(2000, end)], 2000)[0] == 2000
    assert choose([_ck(2000, end)], 2000)[0] == 2000


def test_a_run_chosen_by_the_older_rule_is_decided_again(tmp_path):
    # The older rule kept the best point score on the held-out slice; on resume the kept student and the end of
    # the schedule are scored question by question and the rule of today decides; the end's weights replace
    # the kept student's when it wins, without the training's checkpoints.
    best, train = tmp_path / "best", tmp_path / "train"
    (best / "student").mkdir(parents=True)
    (best / "student" / "model.safetensors").write_text("step 2283")
    (train / "checkpoints").mkdir(parents=True)
    (train / "model.safetensors").write_text("step 3044")
    each = {"student": _noisy(103, 66, 5), "train": _noisy(103, 65, 6)}
    tr = {"scores": [{"step": 761, "score": 59.7}, {"step": 2283, "score": 67.07}, {"step": 3044, "score": 65.06}],
          "done": True, "chosen_step": 2283}
    seen = []

    def score(folder):
        seen.append(folder.name)
        return each[folder.name]

    assert decide_again(tr, best, train, score, say=lambda _: None) is True
    assert sorted(seen) == ["student", "train"]
    assert tr["chosen_step"] == 3044 and tr["rule"] == RULE and "no earlier checkpoint" in tr["chosen_because"]
    assert (best / "student" / "model.safetensors").read_text() == "step 3044"
    assert not (best / "student" / "checkpoints").exists()
    # decided once: a second resume leaves it alone
    assert decide_again(tr, best, train, score, say=lambda _: None) is False and len(seen) == 2


def test_a_run_that_kept_the_end_of_the_schedule_stays_as_it_was(tmp_path):
    tr = {"scores": [{"step": 10, "score": 1.0}, {"step": 20, "score": 2.0}], "done": True, "chosen_step": 20}
    assert decide_again(tr, tmp_path, tmp_path, lambda f: [], say=lambda _: None) is False
    assert tr["chosen_step"] == 20 and tr["rule"] == RULE
