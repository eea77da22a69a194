"""SQuAD v1.1 scoring: the official rules on known cases, and agreement with the official script."""
from __future__ import annotations

import json
import random
import re
import string
import sys
from collections import Counter
from pathlib import Path

import pytest

from edgekit.quality import squad
from edgekit.core.errors import UsageError

SLICE = Path(__file__).parents[1] / "data" / "squad-dev-50.json.xz"


# ---- an independent copy of the official evaluate-v1.1.py (its functions verbatim, Python 3) ----
def _official_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def _official_f1_score(prediction, ground_truth):
    prediction_tokens = _official_normalize_answer(prediction).split()
    ground_truth_tokens = _official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def _official_exact_match_score(prediction, ground_truth):
    return (_official_normalize_answer(prediction) == _official_normalize_answer(ground_truth))


def _official_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def _official_evaluate(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article['paragraphs']:
            for qa in paragraph['qas']:
                total += 1
                if qa['id'] not in predictions:
                    message = 'Unanswered question ' + qa['id'] + ' will receive score 0.'
                    print(message, file=sys.stderr)
                    continue
                ground_truths = list(map(lambda x: x['text'], qa['answers']))
                prediction = predictions[qa['id']]
                exact_match += _official_metric_max_over_ground_truths(
                    _official_exact_match_score, prediction, ground_truths)
                f1 += _official_metric_max_over_ground_truths(
                    _official_f1_score, prediction, ground_truths)
    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total
    return {'exact_match': exact_match, 'f1': f1}
# ---- end of the official copy --------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("The Denver Broncos", "denver broncos"),
    ("  an apple a day, the doctor!  ", "apple day doctor"),
    ("theater anthem", "theater anthem"),          # articles only as whole words
    ("brown-fox", "brownfox"),                      # punctuation is removed, not split on
    ("A.", ""),                                     # punctuation goes first, then the article
    ("Ünïcode Ça", "ünïcode ça"),
    ("1,000 people", "1000 people"),
])
def test_normalize_answer_official_rules(text, expected):
    assert squad.normalize_answer(text) == expected == _official_normalize_answer(text)


def test_f1_and_exact_match_known_cases():
    assert squad.f1_score("Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)   # P 2/3, R 1
    assert squad.f1_score("the cat", "a cat sat") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert squad.f1_score("Paris", "London") == 0.0
    # Both normalise to nothing: exact match, yet F1 0 (no common token) — as in the official script.
    assert squad.exact_match_score("the", "a") and squad.f1_score("the", "a") == 0.0
    assert squad.f1_score("cat cat", "cat") == pytest.approx(2 * 0.5 * 1 / 1.5)   # counts, not sets


def test_max_over_gold_answers():
    q = squad.SquadQuestion("q1", "who?", "ctx", ("Denver Broncos", "Broncos"), (0, 7))
    assert squad.evaluate([q], {"q1": "broncos"}) == {"exact_match": 100.0, "f1": 100.0, "total": 1}
    r = squad.evaluate([q, squad.SquadQuestion("q2", "?", "c", ("x",), (0,))], {"q1": "the Broncos."})
    assert r["exact_match"] == 50.0 and r["f1"] == 50.0  # the unanswered question scores 0


def _predictions(questions, seed=0):
    """Plausible answers of every quality: exact, widened, narrowed, shifted, empty, wrong."""
    rng = random.Random(seed)
    preds = {}
    for q in questions:
        s = q.answer_starts[0]
        e = s + len(q.answers[0])
        kind = rng.randrange(6)
        if kind == 1:
            s, e = max(0, s - rng.randrange(1, 30)), min(len(q.context), e + rng.randrange(1, 30))
        elif kind == 2:
            e = max(s + 1, e - rng.randrange(1, 8))
        elif kind == 3:
            s, e = s + rng.randrange(5, 40), e + rng.randrange(5, 40)
        elif kind == 4:
            s = e = 0
        elif kind == 5:
            s = rng.randrange(len(q.context))
            e = s + rng.randrange(1, 25)
        preds[q.id] = q.context[s:e]
    return preds


def test_slice_is_official_format_with_attribution():
    import lzma

    raw = json.loads(lzma.open(SLICE, "rt", encoding="utf-8").read())
    assert "SQuAD v1.1 (CC BY-SA 4.0" in raw["attribution"]
    qs = squad.load_squad(SLICE)
    assert len(qs) == 50 and len({q.id for q in qs}) == 50
    for q in qs:  # every gold answer sits where its answer_start says
        for text, start in zip(q.answers, q.answer_starts):
            assert q.context[start:start + len(text)] == text
    assert len(squad.load_squad(SLICE, n=7)) == 7


def test_agrees_with_official_script_on_real_questions():
    import lzma

    raw = json.loads(lzma.open(SLICE, "rt", encoding="utf-8").read())
    qs = squad.load_squad(SLICE)
    for seed in range(3):
        preds = _predictions(qs, seed)
        ours = squad.evaluate(qs, preds)
        theirs = _official_evaluate(raw["data"], preds)
        assert 0 < ours["f1"] < 100
        assert ours["f1"] == pytest.approx(theirs["f1"], abs=1e-9)
        assert ours["exact_match"] == pytest.approx(theirs["exact_match"], abs=1e-9)


def test_bad_files_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        squad.load_squad(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}')
    with pytest.raises(UsageError, match="SQuAD format"):
        squad.load_squad(bad)
