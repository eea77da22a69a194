"""``edgekit.validate()`` is ``edgekit validate`` (issue 24, defect 3): the integrity checks run before
parity, and nothing is rewritten when they fail."""
from __future__ import annotations

import json
import shutil

import pytest

import edgekit
from edgekit.core.errors import IntegrityError, UsageError
from edgekit.core.record import ArtifactRecord
from edgekit.core.tasks import Task


@pytest.fixture(scope="module")
def pair(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    fp32, int8 = edgekit.export(tiny_model("bert", Task.FEATURE_EXTRACTION), target="onnx",
                                precision="fp32,int8-dynamic", seq_len=16, out=out)
    return out / fp32.artifact, out / int8.artifact


@pytest.mark.parametrize("damage,finding", [
    (lambda a, b: shutil.copy(a, b), "the record says int8-dynamic but the file holds fp32"),
    (lambda a, b: ArtifactRecord.sidecar_path(b).write_text(
        json.dumps({**json.loads(ArtifactRecord.sidecar_path(b).read_text()), "precision": "fp16"})),
     "the record says fp16"),
], ids=["fp32 copied over int8", "relabelled precision"])
def test_api_validate_refuses_what_the_cli_refuses(pair, tmp_path, damage, finding):
    a, b = (shutil.copy(p, tmp_path / p.name) and tmp_path / p.name for p in pair)
    for p in (a, b):
        shutil.copy(ArtifactRecord.sidecar_path(pair[0].with_name(p.name)), ArtifactRecord.sidecar_path(p))
    damage(a, b)
    record_before = ArtifactRecord.sidecar_path(b).read_text()
    with pytest.raises(IntegrityError, match=finding):
        edgekit.validate(b)
    assert ArtifactRecord.sidecar_path(b).read_text() == record_before  # not re-saved with a stale hash


def test_api_validate_of_a_missing_file_raises_and_writes_nothing(pair, tmp_path):
    a, _ = pair
    shutil.copy(ArtifactRecord.sidecar_path(a), tmp_path / (a.name + ".json"))
    before = (tmp_path / (a.name + ".json")).read_text()
    with pytest.raises(UsageError, match="does not exist"):
        edgekit.validate(tmp_path / a.name)
    assert (tmp_path / (a.name + ".json")).read_text() == before
