"""CLI: every bad input gets a clear message and exit 2; parity failure exits 1; success 0."""
import json
import os
import subprocess
import sys

import pytest

from edgekit.core import registry
from edgekit.cli import main
from edgekit.core.precision import Precision
from edgekit.core.tasks import Task


@pytest.fixture(scope="module")
def cls_model(tiny_model):
    return str(tiny_model("distilbert", Task.SEQUENCE_CLASSIFICATION))


def test_help_is_fast_and_imports_no_backend():
    code = "import sys, edgekit.cli as c; c.build_parser(); print(sorted(m for m in ('torch', 'coremltools', " \
           "'executorch', 'litert_torch', 'onnxruntime', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("argv,message", [
    (["export", "--model", "M", "--target", "coremI"], "Did you mean 'coreml'"),
    (["export", "--model", "M", "--target", "torchscript", "--precision", "fp61"], "unknown precision 'fp61'"),
    (["export", "--model", "M", "--target", "torchscript", "--precision", "fp16"], "torchscript does not export fp16"),
    (["export", "--model", "M", "--target", "torchscript", "--task", "summarize"], "unknown task 'summarize'"),
    (["export", "--model", "M", "--target", "torchscript", "--ane"], "torchscript does not take --ane"),
    (["export", "--model", "M", "--target", "torchscript", "--seq-len", "x"], "bad sequence length"),
    (["export", "--model", "/no/such/folder", "--target", "torchscript"], "does not exist"),
    (["report", "/no/such/folder"], "not a folder"),
    (["validate", "/no/such/file.pt"], "does not exist"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_missing_backend_names_the_extra(monkeypatch, capsys):
    conv = registry.get("executorch")
    monkeypatch.setattr(type(conv), "requires", ("no_such_backend_module",))
    assert main(["export", "--model", "M", "--target", "executorch"]) == 2
    assert "pip install 'edgekit[executorch]'" in capsys.readouterr().err


@pytest.mark.slow
def test_export_validate_report_roundtrip(cls_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "--model", cls_model, "--target", "torchscript", "--seq-len", "16", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| ✅ | torchscript | fp32 | sequence-classification | 16 |" in table
    (art,) = out.glob("*.pt")
    assert main(["validate", str(art)]) == 0
    assert json.loads((out / (art.name + ".json")).read_text())["status"] == "validated"
    assert main(["report", str(out), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["status"] == "validated" and rows[0]["max_abs"] <= 1e-4
    # an impossible tolerance is the user's mistake (exit 2), and the record is left as it was
    assert main(["validate", str(art), "--min-agreement", "1.01"]) == 2
    assert json.loads((out / (art.name + ".json")).read_text())["status"] == "validated"
    # a bound this file cannot meet -> parity failed, exit 1, and the record says so
    assert main(["validate", str(art), "--max-abs", "0"]) == 1
    assert json.loads((out / (art.name + ".json")).read_text())["status"] == "parity-failed"


@pytest.mark.slow
def test_export_failure_is_recorded_not_raised(cls_model, tmp_path, monkeypatch, capsys):
    conv = registry.get("torchscript")

    def broken(self, ctx, dest):
        dest.write_bytes(b"half a file")
        raise RuntimeError("backend exploded")

    monkeypatch.setattr(type(conv), "convert", broken)
    out = tmp_path / "out"
    assert main(["export", "--model", cls_model, "--target", "torchscript", "--seq-len", "16", "--out", str(out)]) == 1
    (side,) = out.glob("*.pt*.json")
    rec = json.loads(side.read_text())
    assert rec["status"] == "export-failed" and "backend exploded" in rec["reason"]
    assert not list(out.glob("*.pt")) and not list(out.glob(".*"))  # nothing half-written is left
    assert "❌" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_measures_artifact_and_eager_baseline(cls_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "--model", cls_model, "--target", "torchscript-lite", "--seq-len", "16", "--out", str(out),
                 "--bench", "--runs", "3", "--warmup", "1", "--threads", "1"]) == 0
    (side,) = out.glob("*.pt*.json")
    (m,) = json.loads(side.read_text())["latency"]
    assert m["threads"] == 1 and m["artifact"]["runs"] == 3 and m["artifact"]["p50_ms"] > 0 and m["eager"]["p50_ms"] > 0
    assert m["artifact"]["p90_ms"] >= m["artifact"]["p50_ms"] and m["host"] and m["run"]
    # a second bench run appends a measurement; the first is kept
    assert main(["bench", str(out / side.name[:-5]), "--runs", "2", "--warmup", "0", "--threads", "1"]) == 0
    lat = json.loads(side.read_text())["latency"]
    assert len(lat) == 2 and lat[0] == m and lat[1]["artifact"]["runs"] == 2


def test_targets_table_lists_every_converter(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for name in registry.converters():
        assert f"| {name} |" in out


def test_targets_table_says_when_a_second_client_is_missing(monkeypatch, capsys):
    conv = registry.get("tflite")
    monkeypatch.setattr(type(conv), "missing_module", lambda self: None)
    monkeypatch.setattr(type(conv), "second_client_unavailable", lambda self: "no Task Library env; create it")
    assert main(["targets"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| tflite |"))
    assert "| --no-metadata | available; second client not installed: no Task Library env; create it |" in line


def test_precision_sweep_skips_what_the_target_rejects(cls_model, tmp_path, monkeypatch, capsys):
    """`--precision all` on Core ML (iOS16 default) skips int4-weight with the reason instead of stopping."""
    pytest.importorskip("coremltools")
    import edgekit.build.stage as export_mod
    from edgekit.core.record import ArtifactRecord, Status

    seen = []

    def fake_export(model, job, out, **kw):
        options = job.options  # a planned job: its options were checked once, by plan
        seen.append(options.precision.value)
        return ArtifactRecord(artifact="x", target=options.target, precision=options.precision,
                              task=options.task, seq_len=options.seq_len, status=Status.VALIDATED)

    monkeypatch.setattr(export_mod, "export_model", fake_export)
    assert main(["export", "--model", cls_model, "--target", "coreml", "--precision", "all", "--out", str(tmp_path)]) == 0
    assert "int4-weight" not in seen and {"fp32", "fp16", "palettize4"} <= set(seen)
    assert "skipping coreml int4-weight" in capsys.readouterr().err
    # asked for by name, the same combination is an error that says what to do
    assert main(["export", "--model", cls_model, "--target", "coreml", "--precision", "int4-weight"]) == 2
    assert "--deployment-target iOS18" in capsys.readouterr().err


def test_misspelt_precision_in_a_sweep_is_an_error(capsys):
    assert main(["export", "--model", "M", "--target", "all", "--precision", "fp32,fp61"]) == 2
    assert "Did you mean 'fp16'" in capsys.readouterr().err


class _Dummy:
    """A converter registered only in tests: its own flag, and it prints to fd 1 like litert-torch."""

    @staticmethod
    def make():
        import os

        from edgekit.core.target import ConvertResult, Converter, Flag
        from edgekit.core.tolerance import Tolerance
        from edgekit.core.precision import Precision

        class Dummy(Converter):
            name, suffix, extra = "dummy", ".dummy", "torchscript"
            precisions = (Precision.FP32,)
            tolerances = {Precision.FP32: Tolerance(max_abs=1e-4)}
            flags = (Flag("dummy_level", "dummy: how hard to try", default=1, type=int),)

            def convert(self, ctx, dest):
                print("NOISE from print")
                os.write(1, b"NOISE from fd 1\n")
                dest.write_text(f"level {ctx.flag('dummy_level')}, inputs {ctx.signature.input_names}")
                return ConvertResult(versions={})

            def load(self, path, record, threads=None):
                raise NotImplementedError

        return Dummy()


@pytest.fixture
def dummy_target(monkeypatch):
    table = {**registry.converters(), "dummy": _Dummy.make()}
    monkeypatch.setattr(registry, "converters", lambda: table)


@pytest.mark.slow
def test_a_target_declares_its_own_flag(cls_model, tmp_path, dummy_target, capfd):
    """Adding a target-specific flag touches only that converter: --help lists it, the record keeps it."""
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "--dummy-level" in capfd.readouterr().out
    out = tmp_path / "out"
    assert main(["export", "--model", cls_model, "--target", "dummy", "--dummy-level", "3", "--no-validate",
                 "--seq-len", "16", "--out", str(out)]) == 0
    (side,) = out.glob("*.dummy.json")
    assert json.loads(side.read_text())["options"] == {"dummy_level": 3}
    assert (out / side.name[:-5]).read_text() == "level 3, inputs ('input_ids', 'attention_mask')"
    # what a converter prints goes to the log, not into the table on stdout
    captured = capfd.readouterr()
    assert "NOISE" not in captured.out and "| dummy | fp32 |" in captured.out
    assert "NOISE from print" in (out / "edgekit.log").read_text()
    assert main(["export", "--model", cls_model, "--target", "torchscript", "--dummy-level", "3"]) == 2
    assert "torchscript does not take --dummy-level" in capfd.readouterr().err


def test_report_into_a_closed_pipe_ends_quietly(tmp_path):
    from edgekit.core.record import ArtifactRecord

    for i in range(1500):  # more than a pipe buffer of table rows
        ArtifactRecord(artifact=f"m{i}.onnx", target="onnx", precision="fp32", task="masked-lm", seq_len="128",
                       status="validated").save(tmp_path / f"m{i}.onnx")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # unbuffered writes hide EPIPE
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "report", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout.readline().startswith(b"# edgekit report")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_demo_leaves_out_what_cannot_reach_the_app_floor_and_says_so(monkeypatch, capsys, tmp_path):
    """palettize4 keeps MiniLM at cosine 0.86: the demo does not export it unless asked by name; the
    rest is still a sweep, so `demo --target` with targets of different precision sets works."""
    import edgekit.cli as cli
    from edgekit.build import plan
    from edgekit.core.config import SeqLen

    got = {}
    monkeypatch.setattr(cli, "_pipeline", lambda args, model, task, targets, precisions, *a, **k:
                        got.update(precisions=precisions, leave_out=k.get("leave_out", ())) or 0)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 0
    assert got["precisions"] == "all" and got["leave_out"] == (Precision.PALETTIZE4,)
    assert "not in the demo" in capsys.readouterr().err
    jobs = plan.plan("torchscript,onnx", "all", [SeqLen.parse("128")], "feature-extraction",
                     leave_out=got["leave_out"])
    assert {(j.target, j.precision) for j in jobs} == {
        ("torchscript", "fp32"), ("torchscript", "int8-dynamic"), ("onnx", "fp32"), ("onnx", "fp16"),
        ("onnx", "int8-dynamic"), ("onnx", "int8-dynamic-full"), ("onnx", "int8-static")}
    try:
        coreml = {j.precision for j in plan.plan("coreml", "all", [SeqLen.parse("128")], "feature-extraction",
                                                  leave_out=got["leave_out"]) if not j.skipped}
    except Exception:  # noqa: BLE001 - coremltools not installed: the torchscript/onnx sweep above says enough
        coreml = None
    if coreml is not None:
        assert "palettize4" not in coreml and {"fp32", "fp16", "palettize6", "palettize8"} <= coreml
    got.clear()
    assert main(["demo", "--precision", "palettize4", "--out", str(tmp_path / "d")]) == 0
    assert got["precisions"] == "palettize4" and got["leave_out"] == ()
