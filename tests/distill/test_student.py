"""Student initialisation: copied weights are the chosen teacher layers; bad maps fail loudly."""
from __future__ import annotations

import json

import pytest
import torch

from distill_fixtures import tiny_bert_config, tiny_mlm_teacher
from edgekit.distill import student as S
from edgekit.core.errors import ModelLoadError, UsageError


def test_default_layer_maps():
    assert S.default_layer_map(12) == [0, 2, 4, 7, 9, 11]
    assert S.default_layer_map(6) == [0, 2, 4]
    assert S.default_layer_map(4) == [0, 2]
    assert S.default_layer_map(12, 4) == [0, 4, 7, 11]
    assert S.default_layer_map(12, 1) == [0]
    with pytest.raises(UsageError):
        S.default_layer_map(6, 7)


def test_copied_weights_equal_chosen_teacher_layers():
    t = tiny_mlm_teacher(layers=6)
    teacher = S.load_teacher(t)
    student, layers = S.build_student(teacher, layers=[1, 3, 5])
    assert layers == [1, 3, 5] and student.config.n_layers == 3
    sd = t.state_dict()
    pairs = {"attention.q_lin": "attention.self.query", "attention.k_lin": "attention.self.key",
             "attention.v_lin": "attention.self.value", "attention.out_lin": "attention.output.dense",
             "sa_layer_norm": "attention.output.LayerNorm", "ffn.lin1": "intermediate.dense",
             "ffn.lin2": "output.dense", "output_layer_norm": "output.LayerNorm"}
    for j, i in enumerate(layers):
        blk = student.distilbert.transformer.layer[j]
        for s_name, t_name in pairs.items():
            for leaf in ("weight", "bias"):
                got = blk.get_submodule(s_name).get_parameter(leaf)
                assert torch.equal(got, sd[f"bert.encoder.layer.{i}.{t_name}.{leaf}"]), (j, s_name)
    emb = student.distilbert.embeddings
    assert torch.equal(emb.word_embeddings.weight, sd["bert.embeddings.word_embeddings.weight"])
    # Token type 0 is folded into the position table (DistilBERT has no token types).
    assert torch.equal(emb.position_embeddings.weight, sd["bert.embeddings.position_embeddings.weight"]
                       + sd["bert.embeddings.token_type_embeddings.weight"][0])
    assert torch.equal(emb.LayerNorm.weight, sd["bert.embeddings.LayerNorm.weight"])
    assert torch.equal(student.vocab_transform.weight, sd["cls.predictions.transform.dense.weight"])
    assert torch.equal(student.vocab_layer_norm.bias, sd["cls.predictions.transform.LayerNorm.bias"])
    assert torch.equal(student.vocab_projector.bias, sd["cls.predictions.decoder.bias"])
    assert student.vocab_projector.weight is emb.word_embeddings.weight  # still tied, as in the teacher
    assert not hasattr(student.distilbert, "pooler")


def test_full_depth_student_reproduces_teacher():
    """Copying every layer must give the teacher's function: proves the name map and the type-0 fold."""
    t = tiny_mlm_teacher(layers=3)
    student, _ = S.build_student(S.load_teacher(t), layers=[0, 1, 2])
    student.eval()
    ids = torch.randint(1000, 20000, (2, 9))
    am = torch.ones_like(ids)
    am[1, 6:] = 0
    with torch.no_grad():
        a = t(input_ids=ids, attention_mask=am).logits
        b = student(input_ids=ids, attention_mask=am).logits
    assert (a - b)[am.bool()].abs().max().item() < 1e-4


def test_encoder_teacher_gives_distilbert_model(encoder_teacher_dir):
    teacher = S.load_teacher(encoder_teacher_dir)
    assert teacher.kind == S.ENCODER and teacher.mlm_head() is None
    student, layers = S.build_student(teacher)
    assert type(student).__name__ == "DistilBertModel" and layers == [0, 2]


def test_distilbert_teacher_can_be_distilled_again():
    first, _ = S.build_student(S.load_teacher(tiny_mlm_teacher(layers=4)), layers=[0, 1, 2, 3])
    second, layers = S.build_student(S.load_teacher(first), layers=[1, 3])
    assert torch.equal(second.distilbert.transformer.layer[1].ffn.lin1.weight,
                       first.distilbert.transformer.layer[3].ffn.lin1.weight)
    assert torch.equal(second.vocab_transform.weight, first.vocab_transform.weight)


@pytest.mark.parametrize("layers", [[0, 9], [2, 1], [1, 1], []])
def test_bad_layer_maps_fail(layers):
    with pytest.raises(UsageError):
        S.build_student(S.load_teacher(tiny_mlm_teacher(layers=4)), layers=layers)


def test_missing_or_misshapen_teacher_weights_fail(monkeypatch):
    teacher = S.load_teacher(tiny_mlm_teacher(layers=2))
    orig = S._teacher_tensors

    def drop_one(t):
        d = orig(t)
        del d["layer.0.ffn.lin1.bias"]
        return d

    monkeypatch.setattr(S, "_teacher_tensors", drop_one)
    with pytest.raises(ModelLoadError, match="without a source"):
        S.build_student(teacher, layers=[0])

    def bad_shape(t):
        d = orig(t)
        d["layer.0.ffn.lin1.weight"] = torch.zeros(3, 3)
        return d

    monkeypatch.setattr(S, "_teacher_tensors", bad_shape)
    with pytest.raises(ModelLoadError, match="shape mismatch"):
        S.build_student(teacher, layers=[0])


def test_unsupported_teacher_is_a_usage_error(tmp_path):
    from transformers import RobertaConfig, RobertaModel

    RobertaModel(RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(tmp_path / "r")
    with pytest.raises(UsageError, match="roberta"):
        S.load_teacher(tmp_path / "r")
    with pytest.raises(ModelLoadError):
        S.load_teacher(tmp_path / "nothing")


def test_init_student_writes_loadable_folder(tmp_path, mlm_teacher_dir):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    out, layers = S.init_student(mlm_teacher_dir, tmp_path / "s")
    m = AutoModelForMaskedLM.from_pretrained(out)
    assert type(m).__name__ == "DistilBertForMaskedLM" and layers == [0, 2]
    enc = AutoTokenizer.from_pretrained(out)("hello world", return_tensors="pt")
    assert set(enc) == {"input_ids", "attention_mask"}
    assert m(**enc).logits.shape[-1] == tiny_bert_config().vocab_size
    meta = json.loads((out / "edgekit_student.json").read_text())
    assert meta["layer_map"] == [0, 2] and meta["teacher_kind"] == "mlm"


def test_the_student_record_has_one_reader(tmp_path):
    assert S.read_student_record(tmp_path) == {}  # a folder without a record (a plain model) is not an error
    (tmp_path / S.STUDENT_RECORD).write_text(json.dumps({"layer_map": [0, 2], "teacher": "t"}))
    assert S.read_student_record(tmp_path) == {"layer_map": [0, 2], "teacher": "t"}
    for damaged in ('{"layer_map": [0,', "[0, 2]", b"\xff\xfe{"):
        f = tmp_path / S.STUDENT_RECORD
        f.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode())
        with pytest.raises(UsageError, match=r"edgekit_student.json .*restore it from the run that wrote the folder"):
            S.read_student_record(tmp_path)
