"""Fixtures: tiny teachers saved with the real (offline) MiniLM tokenizer, and a small stdlib corpus."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill_fixtures import minilm_path, tiny_bert_config, tiny_mlm_teacher


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


@pytest.fixture(scope="session")
def mlm_teacher_dir(tmp_path_factory, tokenizer) -> Path:
    d = tmp_path_factory.mktemp("tiny_mlm_teacher")
    tiny_mlm_teacher().save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def encoder_teacher_dir(tmp_path_factory, tokenizer) -> Path:
    from transformers import BertModel

    torch.manual_seed(1)
    d = tmp_path_factory.mktemp("tiny_encoder_teacher")
    BertModel(tiny_bert_config(4), add_pooling_layer=False).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    from edgekit.distill.corpus import stdlib_sentences, write_corpus

    d = tmp_path_factory.mktemp("corpus")
    return write_corpus(d / "corpus.txt", stdlib_sentences(limit=600))
