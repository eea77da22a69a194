from edgekit import report
from edgekit.record import ArtifactRecord, Status


def _rec(name, target, precision, status, size, **kw):
    return ArtifactRecord(artifact=name, target=target, precision=precision, task="masked-lm", seq_len="128",
                          status=status, size_bytes=size, source={"source": "/m"}, **kw)


def test_markdown_rows_states_sizes_and_reasons(tmp_path):
    recs = [
        _rec("a.fp32.tflite", "tflite", "fp32", Status.VALIDATED, 4_000_000,
             parity={"outputs": [{"max_abs": 1e-6, "cosine": 1.0, "psnr": 120.0}], "agreement": 1.0},
             latency={"p50_ms": 10.0, "p90_ms": 12.0, "eager_p50_ms": 30.0, "threads": 2}),
        _rec("a.int8.tflite", "tflite", "int8-dynamic", Status.PARITY_FAILED, 1_000_000, reason="agreement 50% < 97%",
             options={"task_library": {"client": "tflite-support BertNLClassifier", "status": "disagreed",
                                       "agreement": 0.5}}),
        _rec("a.pte", "executorch", "fp32", Status.EXPORT_FAILED, None, reason="RuntimeError: boom"),
        _rec("a.mlpackage", "coreml", "fp16", Status.VALIDATION_SKIPPED, 2_000_000, reason="unsupported op 'foo'"),
    ]
    for r in recs:
        r.save(tmp_path / r.artifact)
    got = report.collect(tmp_path)
    assert [r.target for r in got] == ["executorch", "coreml", "tflite", "tflite"]  # table order
    md = report.to_markdown(got)
    assert "| ✅ | tflite | fp32 | masked-lm | 128 | 4.0 | 100 | 1e-06 | 1.00000 | 120.0 | 100.0% | 10.0 | 12.0 | 3.00 |" in md
    assert "| ❎ | tflite | int8-dynamic | masked-lm | 128 | 1.0 | 25 |" in md
    assert "❌ `a.pte` (export-failed): RuntimeError: boom" in md
    assert "⚠️ `a.mlpackage` (validation-skipped): unsupported op 'foo'" in md
    assert "BertNLClassifier: disagreed (50% agreement)" in md
