"""The Apple Neural Engine layout (edgekit.targets.coreml.ane) computes what the plain EdgeModel computes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from edgekit.targets.coreml.ane import ANE_MIN_EPS, ANEModel
from edgekit.model.modeling import load_model
from edgekit.core.tasks import Task


def _inputs(model, seq: int = 24, pad: int = 7) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, model.config.vocab_size, (1, seq), dtype=torch.int32, generator=g)
    mask = torch.ones(1, seq, dtype=torch.int32)
    mask[0, seq - pad:] = 0
    types = torch.zeros(1, seq, dtype=torch.int32)
    types[0, seq // 2:] = 1
    return (ids, mask) + ((types,) if "token_type_ids" in model.input_names else ())


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
@pytest.mark.parametrize("task", list(Task))
def test_ane_layout_matches_plain_model(tiny_model, arch, task):
    model = load_model(tiny_model(arch, task), task)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ane = ANEModel.from_edge_model(model)
    assert ane.input_names == model.input_names and ane.output_names == model.output_names
    for seq, pad in ((24, 7), (9, 0)):
        args = _inputs(model, seq, pad)
        with torch.no_grad():
            ref, got = model(*args), ane(*args)
        assert len(ref) == len(got) == len(task.output_names)
        for name, r, g in zip(task.output_names, ref, got):
            assert r.shape == g.shape, name
            assert float((r - g).abs().max()) <= 1e-4, f"{name}: {float((r - g).abs().max())}"
    # Building the ANE twin must not touch the source model.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_ane_structure_follows_apple_principles(tiny_model):
    model = load_model(tiny_model("distilbert", Task.MASKED_LM), Task.MASKED_LM)
    ane = ANEModel.from_edge_model(model)
    linears = [n for n, m in ane.named_modules() if isinstance(m, nn.Linear)]
    convs = [m for m in ane.modules() if isinstance(m, nn.Conv2d)]
    assert not linears, f"linear layers left in the ANE layout: {linears}"
    # 6 per layer (q, k, v, o, ffn_in, ffn_out) + MLM transform + decoder, all 1x1.
    assert len(convs) == 6 * model.config.num_layers + 2
    assert all(c.kernel_size == (1, 1) for c in convs)
    # DistilBERT's 1e-12 epsilon underflows in fp16; the ANE layout raises it.
    assert model.config.layer_norm_eps < ANE_MIN_EPS and ane.eps == ANE_MIN_EPS
    # The MLM decoder carries the plain model's weights (ml-ane-transformers drops this head).
    torch.testing.assert_close(convs[-1].weight[:, :, 0, 0], model.head.decoder.weight)


def test_ane_hidden_state_layout_is_channels_first(tiny_model):
    model = load_model(tiny_model("bert", Task.FEATURE_EXTRACTION), Task.FEATURE_EXTRACTION)
    ane = ANEModel.from_edge_model(model)
    seen = []
    ane.layers[0].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    with torch.no_grad():
        ane(*_inputs(model, 16, 3))
    assert seen == [(1, model.config.hidden_size, 1, 16)]
