"""benchmarks/squad_quality.py: the page rendered from its JSON."""
from __future__ import annotations


def test_the_share_column_names_its_teacher(benchmark_script):
    # squad_quality.md's column "% of the equal-budget teacher's F1": every row divided by the named row's F1,
    # and the page says which row that is (two teachers had the students' budget).
    sq = benchmark_script("squad_quality")
    row = {"layers": 3, "em": 60.0, "size_mb": 69.0, "s_per_question": 0.02, "training": {}}
    data = {"pytorch": {"em": 70.0, "f1": 80.0, "size_mb": 90.0, "s_per_question": 0.05}, "model": "m",
            "command": "c", "date": "d", "machine": "x", "loadavg_start": 0, "loadavg_end": 0, "threads": 1,
            "squad": "s", "n": 10, "rows": [], "teacher_layers": 6,
            "models": [{**row, "label": "old teacher", "f1": 79.0}, {**row, "label": "new teacher", "f1": 81.0},
                       {**row, "label": "student", "f1": 77.76}],
            "equal_budget_teacher": "new teacher", "equal_budget_why": "the stronger one"}
    text = sq.render(data)
    student = next(x for x in text.splitlines() if x.startswith("| student |"))
    assert "| 97.2% | 96.0% |" in student  # of the shared model (80), of the named teacher (81)
    assert 'divides by the row "new teacher" (F1 81.00): the stronger one' in text
