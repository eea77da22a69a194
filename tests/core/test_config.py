import pytest

from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.errors import UsageError
from edgekit.core.precision import Precision
from edgekit.core.tasks import Task


@pytest.mark.parametrize("text,kind,values,default", [
    ("128", "fixed", (128,), 128), ("384,128,256", "enumerated", (128, 256, 384), 384),
    ("16:512", "range", (16, 512), 128),
])
def test_seq_len_parse(text, kind, values, default):
    s = SeqLen.parse(text)
    assert (s.kind, s.values, s.default) == (kind, values, default)
    assert SeqLen.parse(str(s)) == s


@pytest.mark.parametrize("bad", ["abc", "512:16", "1", "128,128", "8:8"])
def test_seq_len_rejects(bad):
    with pytest.raises(UsageError):
        SeqLen.parse(bad)


def test_precision_parse_int8_alias_and_suggestions():
    assert Precision.parse("int8", (Precision.FP32, Precision.INT8_WEIGHT, Precision.INT8_DYNAMIC)) == Precision.INT8_WEIGHT
    with pytest.raises(UsageError, match="Did you mean 'fp16'"):
        Precision.parse("fp61")
    with pytest.raises(UsageError, match="not supported by this target"):
        Precision.parse("fp16", (Precision.FP32,))
    with pytest.raises(UsageError, match="no int8"):
        Precision.parse("int8", (Precision.FP32,))


def test_task_parse_suggests():
    with pytest.raises(UsageError, match="question-answering"):
        Task.parse("question-answer")


def test_options_reject_contradictions(tmp_path):
    with pytest.raises(UsageError, match="only applies to --precision int8-static"):
        ExportOptions(target="tflite", task=Task.MASKED_LM, precision=Precision.FP32, calibration=tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        ExportOptions(target="tflite", task=Task.MASKED_LM, precision=Precision.INT8_STATIC,
                      calibration=tmp_path / "missing.txt")
    with pytest.raises(UsageError):
        ExportOptions(target="x", task=Task.MASKED_LM, token_types="maybe")


def test_precision_select_for_sweeps_and_single_targets():
    supported = (Precision.FP32, Precision.INT8_WEIGHT, Precision.INT8_DYNAMIC)
    # a sweep drops what this target cannot export
    assert Precision.select(["fp16", "int8", "fp32", "fp32"], supported, only_supported=True) == [
        Precision.INT8_WEIGHT, Precision.FP32]
    assert Precision.select(["int8"], (Precision.FP32,), only_supported=True) == []
    # a single target keeps it, for the target's check to reject with its own message
    assert Precision.select(["fp16"], supported, only_supported=False) == [Precision.FP16]
    # a misspelt name is an error either way, never silently dropped
    for only in (True, False):
        with pytest.raises(UsageError, match="Did you mean 'fp16'"):
            Precision.select(["fp61"], supported, only_supported=only)
