import numpy as np
import pytest
import torch

from edgekit.core.config import SeqLen
from edgekit.core.tolerance import Tolerance
from edgekit.check.parity import best_span, compare, cosine, psnr, task_agreement
from edgekit.core.tasks import Task


def test_psnr_matches_the_ane_transformers_formula():
    ref = np.array([1.0, -2.0, 4.0])
    got = ref + np.array([0.1, -0.1, 0.0])
    rms = np.sqrt(np.mean((ref - got) ** 2))
    assert psnr(ref, got) == pytest.approx(20 * np.log10((4.0 + 1e-5) / (rms + 1e-10)))
    assert psnr(ref, ref) > 100


def test_cosine_edge_cases():
    assert cosine(np.ones(3), np.ones(3)) == pytest.approx(1.0)
    assert cosine(np.ones(3), -np.ones(3)) == pytest.approx(-1.0)
    assert cosine(np.zeros(3), np.ones(3)) == 0.0


def test_best_span_respects_order_length_and_mask():
    start = np.array([0.0, 5.0, 0.0, 0.0, 9.0])
    end = np.array([0.0, 0.0, 6.0, 0.0, 0.0])
    valid = np.array([True, True, True, True, False])  # index 4 is padding: its 9.0 must be ignored
    assert best_span(start, end, valid) == (1, 2)
    assert best_span(start, end, valid, max_len=1) != (1, 2)  # span of 2 tokens is too long


def test_agreement_for_classification_counts_argmax():
    refs = [{"logits": np.array([[1.0, 2.0]])}, {"logits": np.array([[3.0, 0.0]])}]
    gots = [{"logits": np.array([[1.0, 2.5]])}, {"logits": np.array([[0.0, 3.0]])}]
    masks = [np.ones((1, 2))] * 2
    agr = task_agreement(Task.SEQUENCE_CLASSIFICATION, refs, gots, masks)
    assert (agr.share, agr.agreed, agr.decisive, agr.judged) == (0.5, 1, 2, 2)


def test_agreement_counts_only_decisive_samples():
    """A near-tie the value bound could flip is not judged; a clear decision is."""
    refs = [{"logits": np.array([[1.0, 1.01]])}, {"logits": np.array([[3.0, 0.0]])}]
    gots = [{"logits": np.array([[1.01, 1.0]])}, {"logits": np.array([[0.0, 3.0]])}]
    masks = [np.ones((1, 2))] * 2
    agr = task_agreement(Task.SEQUENCE_CLASSIFICATION, refs, gots, masks, Tolerance(max_abs=0.05))
    assert (agr.agreed, agr.decisive, agr.judged) == (0, 1, 2)


def test_qa_margin_uses_span_scores():
    start = np.array([[0.0, 5.0, 4.9, 0.0]])
    end = np.array([[0.0, 0.0, 6.0, 0.0]])
    ref = {"start_logits": start, "end_logits": end}
    got = {"start_logits": start[:, [0, 2, 1, 3]], "end_logits": end}  # (2, 2) now beats (1, 2)
    mask = [np.ones((1, 4))]
    tight = task_agreement(Task.QUESTION_ANSWERING, [ref], [got], mask, Tolerance(max_abs=1e-3))
    loose = task_agreement(Task.QUESTION_ANSWERING, [ref], [got], mask, Tolerance(max_abs=0.1))
    assert (tight.agreed, tight.decisive) == (0, 1)
    assert (loose.agreed, loose.decisive) == (0, 0) and loose.share is None


def test_embedding_recall_at_10_against_an_index():
    rng = np.random.default_rng(0)
    index = rng.normal(size=(200, 16))
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    q = rng.normal(size=(8, 16))
    refs = [{"embedding": q[i:i + 1]} for i in range(8)]
    same = task_agreement(Task.FEATURE_EXTRACTION, refs, refs, [np.ones((1, 4))] * 8, index=index)
    assert (same.agreed, same.decisive, same.share) == (80, 80, 1.0)
    noisy = [{"embedding": -q[i:i + 1]} for i in range(8)]
    bad = task_agreement(Task.FEATURE_EXTRACTION, refs, noisy, [np.ones((1, 4))] * 8, index=index)
    assert bad.share < 0.2 and "recall@10 among 200" in bad.metric


class _Model(torch.nn.Module):
    input_names = ("input_ids", "attention_mask")
    output_names = ("logits",)

    def forward(self, ids, mask):
        return (torch.stack([ids.float().sum(1), mask.float().sum(1)], dim=1),)


class _Runner:
    input_names = ("input_ids", "attention_mask")
    output_names = ("logits",)

    def __init__(self, noise=0.0, names=None):
        self.noise = noise
        if names:
            self.output_names = names

    def run(self, feeds):
        out = np.stack([feeds["input_ids"].sum(1), feeds["attention_mask"].sum(1)], axis=1).astype(np.float32)
        return {"logits": out + self.noise}


def _feeds():
    return [{"input_ids": np.array([[3, 4, 5]], np.int32), "attention_mask": np.array([[1, 1, 0]], np.int32)}]


def test_compare_passes_identical_and_names_the_number_that_broke():
    ok = compare(_Model(), lambda: _Runner(), _feeds(), Task.SEQUENCE_CLASSIFICATION, Tolerance(max_abs=1e-6), verbose=False)
    assert ok.passed and ok.outputs[0].max_abs == 0
    bad = compare(_Model(), lambda: _Runner(0.5), _feeds(), Task.SEQUENCE_CLASSIFICATION, Tolerance(max_abs=1e-3), verbose=False)
    assert not bad.passed
    assert bad.failures == ["logits max_abs 0.5 > 0.001"]
    assert [s.name for s in bad.steps if not s.ok] == ["values"]


def test_compare_stops_at_missing_output_names():
    rep = compare(_Model(), lambda: _Runner(names=("scores",)), _feeds(), Task.SEQUENCE_CLASSIFICATION, Tolerance(),
                  verbose=False)
    assert not rep.passed and rep.steps[-1].name == "output names" and not rep.outputs


def test_feature_agreement_searches_within_one_length():
    """The same text padded to two lengths embeds identically: that tie must not count as a miss."""
    emb = [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])]
    refs = [{"embedding": e} for e in emb + emb]
    masks = [np.ones((1, 8))] * 2 + [np.ones((1, 16))] * 2
    assert task_agreement(Task.FEATURE_EXTRACTION, refs, refs, masks).share == 1.0
    swapped = [{"embedding": e} for e in emb[::-1] + emb]
    assert task_agreement(Task.FEATURE_EXTRACTION, refs, swapped, masks).share == 0.5


def test_without_real_text_the_report_says_random_inputs_only():
    rep = compare(_Model(), lambda: _Runner(), _feeds(), Task.SEQUENCE_CLASSIFICATION, Tolerance(max_abs=1e-6),
                  verbose=False)
    assert rep.inputs_note == "random inputs only" and rep.text_samples == 0
    real = compare(_Model(), lambda: _Runner(), _feeds(), Task.SEQUENCE_CLASSIFICATION, Tolerance(max_abs=1e-6),
                   verbose=False, real=[True])
    assert real.inputs_note is None and real.text_samples == 1


def test_ranges_are_validated_at_both_ends_and_between():
    from edgekit.core.config import SeqLen
    from edgekit.check.verdict import parity_lengths

    assert parity_lengths(SeqLen.parse("16:512")) == [16, 128, 512]
    assert parity_lengths(SeqLen.parse("16:64")) == [16, 40, 64]
    assert parity_lengths(SeqLen.parse("128,256")) == [128, 256]


def test_shipped_samples_are_real_and_enough():
    from edgekit.model import samples

    assert len(samples.sentences()) >= 1000 and len(set(samples.sentences())) == len(samples.sentences())
    assert len(samples.qa_pairs()) >= 64
    readme = (samples.DATA_DIR / "README.md").read_text()
    assert samples.ATTRIBUTION in readme


def test_upper_end_beyond_max_positions_is_a_usage_error(tiny_model, tmp_path):
    from edgekit import cli

    path = tiny_model("bert", Task.FEATURE_EXTRACTION)  # max_position_embeddings 512
    code = cli.main(["export", "--model", str(path), "--task", "feature-extraction", "--target", "onnx",
                     "--seq-len", "16:1024", "--out", str(tmp_path)])
    # Refused before any export: nothing but the run's log (edgekit.log) is written.
    assert code == 2 and {p.name for p in tmp_path.iterdir()} <= {"edgekit.log"}


def test_loaded_model_beyond_max_positions_is_a_usage_error(tiny_model):
    """The Python API path (no preflight of a folder): the same rule on the loaded model."""
    from edgekit.core.errors import UsageError
    from edgekit.build.stage import check_max_positions
    from edgekit.model.modeling import load_model

    model = load_model(str(tiny_model("bert", Task.FEATURE_EXTRACTION)), Task.FEATURE_EXTRACTION)
    check_max_positions(model, SeqLen.parse("16:512"))
    with pytest.raises(UsageError, match="512 position embeddings"):
        check_max_positions(model, SeqLen.parse("16:1024"))


def test_reference_outputs_are_reused_across_artifacts_until_the_weights_change(tiny_model):
    """One run validates many artifacts of one model on the same feeds: PyTorch runs once per feed."""
    from edgekit.model.inputs import random_feeds
    from edgekit.model.modeling import load_model
    from edgekit.check.parity import reference_outputs

    model = load_model(str(tiny_model("bert", Task.FEATURE_EXTRACTION)), Task.FEATURE_EXTRACTION)
    feeds = random_feeds(model.config.vocab_size, 16, model.input_names, n=3)
    first = reference_outputs(model, feeds)
    again = reference_outputs(model, feeds[1:])
    assert again[0] is first[1] and again[1] is first[2]  # cached, not recomputed
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)  # an in-place edit of the weights
    edited = reference_outputs(model, feeds)
    assert edited[0] is not first[0]
    assert not np.allclose(edited[0]["embedding"], first[0]["embedding"])


def test_sample_feeds_are_tokenised_once_and_identical(tiny_model):
    from edgekit.model.modeling import load_tokenizer
    from edgekit.model.samples import sample_feeds

    tok = load_tokenizer(str(tiny_model("bert", Task.FEATURE_EXTRACTION)))
    a = sample_feeds(tok, Task.FEATURE_EXTRACTION, 32, ("input_ids", "attention_mask"))
    b = sample_feeds(tok, Task.FEATURE_EXTRACTION, 32, ("input_ids", "attention_mask"))
    assert len(a) == 64 and a[0]["input_ids"] is b[0]["input_ids"] and a[0] is not b[0]
    assert sample_feeds(tok, Task.FEATURE_EXTRACTION, 16, ("input_ids", "attention_mask"))[0]["input_ids"].shape == (1, 16)
