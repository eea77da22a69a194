"""Fixtures for the TFLite target and the Task Library client (imported by their test modules).

Random tiny models make poor Task Library subjects: its QA decoder only considers the 5 highest
start/end logits over the whole padded sequence, so a random head often yields no answer at all,
and a random classifier says the same label for every text. These fixtures give the tiny models
trained heads (a linear fit on the frozen random encoder, a second or so), so that a correct file
produces definite answers and a wrongly wired one is caught.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest
import torch

from tiny_models import WORDS, build_tiny
from edgekit.targets.tflite import tasklib
from edgekit.targets.tflite.tasklib.check import QA_CHECK_PAIRS
from edgekit.core.tasks import Task

CITIES = {"paris": "france", "london": "england"}


@pytest.fixture(scope="session")
def tasklib_env() -> Path:
    """The Task Library environment; created on demand (PyPI access), never silently absent.

    Set EDGEKIT_SKIP_TASKLIB=1 to skip (reported as skipped) the tests that need it.
    """
    reason = tasklib.unavailable()
    if reason and os.environ.get("EDGEKIT_SKIP_TASKLIB") == "1":
        pytest.skip(f"EDGEKIT_SKIP_TASKLIB=1 and {reason}")
    if reason:
        try:
            tasklib.create(quiet=True)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"the Task Library environment is missing and could not be created ({e}); "
                        f"run `{tasklib.CREATE_COMMAND}` (and apt-get install libusb-1.0-0)")
    return tasklib.env_dir()


def _copy_tokenizer(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and not f.name.endswith((".safetensors", ".bin")) and f.name != "config.json":
            shutil.copy2(f, dst / f.name)


def _qa_examples(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(question, context) pairs whose context holds one "city country" pair among filler words."""
    rng = random.Random(seed)
    filler = [w for w in WORDS if w not in CITIES and w not in CITIES.values()]
    out = list(QA_CHECK_PAIRS)
    for _ in range(n):
        words = [rng.choice(filler) for _ in range(rng.randint(6, 40))]
        city = rng.choice(sorted(CITIES))
        pos = rng.randint(0, len(words))
        words[pos:pos] = [city, CITIES[city]]
        question = " ".join(rng.choice(filler) for _ in range(rng.randint(2, 6)))
        out.append((question, " ".join(words)))
    return out


def train_qa_head(src: Path, dst: Path, seq_len: int = 384, steps: int = 200) -> Path:
    """Copy a tiny QA checkpoint with its QA head fitted to answer "<city> <country>" spans."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(src))
    hf = transformers.AutoModelForQuestionAnswering.from_pretrained(str(src)).eval()
    pairs = _qa_examples(48)
    enc = tok([q for q, _ in pairs], [c for _, c in pairs], padding="max_length", truncation="only_second",
              max_length=seq_len, return_tensors="pt", return_token_type_ids=True)
    city_ids = {tok.convert_tokens_to_ids(c) for c in CITIES}
    country_ids = {tok.convert_tokens_to_ids(c) for c in CITIES.values()}
    second = enc["token_type_ids"].bool() if hf.config.model_type == "bert" else None
    if second is None:  # DistilBERT tokenizers may not return segment ids: find the context after the first [SEP]
        sep = (enc["input_ids"] == tok.sep_token_id).int().cumsum(-1)
        second = (sep >= 1) & (enc["input_ids"] != tok.sep_token_id) & enc["attention_mask"].bool()
    starts = torch.isin(enc["input_ids"], torch.tensor(sorted(city_ids))) & second
    ends = torch.isin(enc["input_ids"], torch.tensor(sorted(country_ids))) & second
    kwargs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if hf.config.model_type == "bert":
        kwargs["token_type_ids"] = enc["token_type_ids"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared CI machine
    try:
        with torch.no_grad():
            base = getattr(hf, hf.base_model_prefix)
            feats = base(**kwargs).last_hidden_state
        head = torch.nn.Linear(feats.shape[-1], 2)
        opt = torch.optim.Adam(head.parameters(), lr=0.05)
        t_start = starts.float() / starts.float().sum(-1, keepdim=True)
        t_end = ends.float() / ends.float().sum(-1, keepdim=True)
        for _ in range(steps):
            logits = head(feats)
            loss = -(t_start * logits[..., 0].log_softmax(-1)).sum(-1).mean() \
                   - (t_end * logits[..., 1].log_softmax(-1)).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        hf.qa_outputs.weight.copy_(head.weight)
        hf.qa_outputs.bias.copy_(head.bias)
    _copy_tokenizer(src, dst)
    hf.save_pretrained(dst)
    return dst


def train_classifier(src: Path, dst: Path, steps: int = 60, seed: int = 0) -> Path:
    """Copy a tiny classifier fine-tuned on a keyword task: "london" -> label 0, "paris" -> 1, else 2.

    A random head gives every text the same label, and any head on a random encoder sits so close
    to its decision boundaries that int8 noise flips labels; a couple of seconds of training gives
    a model with real margins, like the checkpoints users export.
    """
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(src))
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(str(src))
    rng = random.Random(seed)
    torch.manual_seed(seed)
    filler = [w for w in WORDS if w not in ("paris", "london")]
    texts, labels = [], []
    for _ in range(512):
        words = [rng.choice(filler) for _ in range(rng.randint(3, 20))]
        label = rng.randrange(3)
        if label < 2:
            words.insert(rng.randint(0, len(words)), ("london", "paris")[label])
        texts.append(" ".join(words))
        labels.append(label)
    enc = tok(texts, padding="max_length", truncation=True, max_length=32, return_tensors="pt")
    y = torch.tensor(labels)
    opt = torch.optim.AdamW(hf.parameters(), lr=3e-3)
    hf.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared CI machine
    try:
        for _ in range(steps):
            idx = torch.randint(0, len(texts), (32,))
            out = hf(input_ids=enc["input_ids"][idx], attention_mask=enc["attention_mask"][idx], labels=y[idx])
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    hf.eval()
    hf.config.edgekit_train_loss = float(out.loss)
    _copy_tokenizer(src, dst)
    hf.save_pretrained(dst)
    return dst


@pytest.fixture(scope="session")
def qa_checkpoint(tmp_path_factory) -> Path:
    """Tiny DistilBERT QA checkpoint that answers "<city> <country>"."""
    src = build_tiny(tmp_path_factory.mktemp("qa-src"), "distilbert", Task.QUESTION_ANSWERING)
    return train_qa_head(src, tmp_path_factory.mktemp("qa-trained"))


@pytest.fixture(scope="session")
def cls_checkpoint(tmp_path_factory) -> Path:
    """Tiny BERT classifier whose labels vary across texts."""
    # hidden 128: big enough (> 256 KiB of int8 weights) that ai-edge-quantizer stores weights as
    # offset buffers, the layout old runtimes and metadata writers silently drop.
    src = build_tiny(tmp_path_factory.mktemp("cls-src"), "bert", Task.SEQUENCE_CLASSIFICATION, hidden=128)
    return train_classifier(src, tmp_path_factory.mktemp("cls-trained"))


@pytest.fixture(scope="session")
def calibration_file(tmp_path_factory) -> Path:
    """128 lines of representative (vocabulary-covering) text for int8-static."""
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 40))) for _ in range(128)]
    path = tmp_path_factory.mktemp("calib") / "calibration.txt"
    path.write_text("\n".join(lines) + "\n")
    return path

