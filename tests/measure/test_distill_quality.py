"""benchmarks/distill_quality.py: one recipe table; ``default`` and ``long`` are its rows with the settings
``edgekit distill`` runs, read from edgekit, never restated in the benchmark."""
from __future__ import annotations

import json

import pytest


def test_default_and_long_are_the_rows_with_edgekit_distills_settings(benchmark_script):
    from edgekit.distill.default import OBJECTIVES, DefaultOptions

    dq = benchmark_script("distill_quality")
    d = DefaultOptions()
    name, (corpus, weights, steps, max_len, lr) = dq.resolve("default")
    assert (corpus, weights, steps, max_len, lr) == (d.corpus, OBJECTIVES[d.objective], d.steps, d.max_len, d.lr)
    assert name in dq.RECIPES  # the default's numbers are a measured row, not a separate run
    long_name, long_spec = dq.resolve("long")
    assert long_spec[2] == dq.LONG_FACTOR * d.steps and long_spec[:2] == (corpus, weights)
    assert long_name in dq.RECIPES and long_name != name
    assert dq.resolve("mix-rel") == ("mix-rel", ("mix", {"nmse": 1.0, "rel": 1.0}, 600, 64, 1e-4))


def test_a_default_without_a_measured_row_runs_under_its_own_name(benchmark_script, monkeypatch):
    dq = benchmark_script("distill_quality")
    row, spec = dq.resolve("default")
    monkeypatch.setattr(dq, "RECIPES", {k: v for k, v in dq.RECIPES.items() if k != row})
    assert dq.resolve("default") == ("default", spec)  # never an old row whose settings differ


def test_the_rendered_table_marks_the_default_and_long_rows(benchmark_script):
    dq = benchmark_script("distill_quality")
    res = json.loads((dq.JSON_OUT).read_text())
    md = dq.render(res)
    assert f"| **{dq.resolve('default')[0]}** (default) |" in md
    assert f"| **{dq.resolve('long')[0]}** (long) |" in md


def test_a_stopped_recipe_knows_its_speed(benchmark_script, tmp_path):
    dq = benchmark_script("distill_quality")
    assert dq._speed(tmp_path) is None
    (tmp_path / "sessions.json").write_text(json.dumps([{"wall_s": 100.0, "steps_to": 30},
                                                          {"wall_s": 50.0, "steps_to": 50}]))
    assert dq._speed(tmp_path) == pytest.approx(20 / 50)


def test_unknown_recipe_is_a_usage_error(benchmark_script, capsys):
    dq = benchmark_script("distill_quality")
    with pytest.raises(SystemExit) as e:
        dq.main(["recipe", "no-such-recipe"])
    assert e.value.code == 2 and "default, long" in capsys.readouterr().err
