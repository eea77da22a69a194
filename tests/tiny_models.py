"""Tiny BERT / DistilBERT checkpoints built from configs with fixed seeds (the one builder every test
and fixture uses). Nothing is downloaded: the tokenizer is a small WordPiece vocabulary written here.
"""
from __future__ import annotations

import string
from pathlib import Path

import torch

from edgekit.core.tasks import Task

WORDS = (
    "the a an of to in and is was for on with as by at from it this that be are or not which his her "
    "their they he she we you i what who where when why how many much city river capital country paris "
    "france london england river seine thames located flows through north south east west year built "
    "tower bridge museum art world war first second name called known largest population people "
    "question answer model phone edge small fast quick brown fox jumps over lazy dog cafe naive resume"
).split()


def write_vocab(folder: Path) -> Path:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = specials + chars + ["##" + c for c in string.ascii_lowercase + string.digits] + WORDS
    seen: dict[str, None] = dict.fromkeys(vocab)
    path = folder / "vocab.txt"
    path.write_text("\n".join(seen) + "\n")
    return path


HF_CLASSES = {
    ("bert", Task.MASKED_LM): "BertForMaskedLM",
    ("bert", Task.FEATURE_EXTRACTION): "BertModel",
    ("bert", Task.SEQUENCE_CLASSIFICATION): "BertForSequenceClassification",
    ("bert", Task.QUESTION_ANSWERING): "BertForQuestionAnswering",
    ("bert", Task.TOKEN_CLASSIFICATION): "BertForTokenClassification",
    ("distilbert", Task.MASKED_LM): "DistilBertForMaskedLM",
    ("distilbert", Task.FEATURE_EXTRACTION): "DistilBertModel",
    ("distilbert", Task.SEQUENCE_CLASSIFICATION): "DistilBertForSequenceClassification",
    ("distilbert", Task.QUESTION_ANSWERING): "DistilBertForQuestionAnswering",
    ("distilbert", Task.TOKEN_CLASSIFICATION): "DistilBertForTokenClassification",
}


def build_tiny(folder: Path, arch: str, task: Task | str, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """Save a tiny randomly initialised HF checkpoint + tokenizer into ``folder``; return it."""
    import transformers

    task = Task.parse(task)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_path = write_vocab(folder)
    vocab = {w: i for i, w in enumerate(vocab_path.read_text().split("\n")) if w}
    tok = transformers.BertTokenizerFast(vocab=vocab, do_lower_case=True)
    tok.save_pretrained(folder)
    vocab_size = len(tok)
    common = {}
    if task in (Task.SEQUENCE_CLASSIFICATION, Task.TOKEN_CLASSIFICATION):
        labels = {0: "NEGATIVE", 1: "POSITIVE", 2: "NEUTRAL"}
        common = dict(id2label=labels, label2id={v: k for k, v in labels.items()})
    if arch == "bert":
        cfg = transformers.BertConfig(
            vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
            intermediate_size=hidden * 2, max_position_embeddings=512, type_vocab_size=2, **common,
        )
    else:
        cfg = transformers.DistilBertConfig(
            vocab_size=vocab_size, dim=hidden, n_layers=layers, n_heads=4, hidden_dim=hidden * 2,
            max_position_embeddings=512, **common,
        )
    torch.manual_seed(seed)
    model = getattr(transformers, HF_CLASSES[(arch, task)])(cfg)
    # Random init leaves LayerNorms at identity and biases at zero; perturb everything so that a
    # wrong key mapping cannot hide behind identical tensors.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval().save_pretrained(folder)
    return folder
