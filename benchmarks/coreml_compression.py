"""Core ML weight-compression recipes on the real all-MiniLM-L6-v2: where the error comes from, and
which recipe an embedding app could use.

For each recipe (``edgekit.targets.coreml.converter.Recipe``) the fp16 ML Program of the model is compressed with
coremltools, saved, and read back from disk by coremltools' own MIL loader (not edgekit's
interpreter). Each compressed weight is dequantised there (coremltools'
``materialized_val_inference`` of the constexpr ops) and

* compared with the fp16 weight it replaced (relative error ||W' - W|| / ||W|| per tensor);
* put into a copy of the fp32 PyTorch model (``EdgeModel``), which is measured as parity measures
  a file: the 4 random + 64 real-sentence feeds at seq 128, worst-sample cosine of each output,
  recall@10 among the 1,024 shipped sentences (all ten neighbours, no decisive filter);
* the saved package also runs in edgekit's MIL interpreter on the first ``--interp`` real feeds:
  its outputs against the dequantised PyTorch model's (an interpreter that reads or computes the
  file wrongly shows up here) and against the original's.

    nice -n 10 .venv/bin/python benchmarks/coreml_compression.py             # every recipe
    nice -n 10 .venv/bin/python benchmarks/coreml_compression.py --only p4-tensor,i4-block32  # some
    .venv/bin/python benchmarks/coreml_compression.py --render-only     # the md again from the json

Writes ``benchmarks/results/coreml_compression.{json,md}`` (``--only`` runs update their rows), after every candidate.
"""
from __future__ import annotations

import copy
import json
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from edgekit.targets.coreml.converter import RECIPES, Recipe  # noqa: E402
from edgekit.core.precision import Precision  # noqa: E402

SEQ = 128
T8 = Recipe("palettize", 8, "per_tensor")            # an 8-bit table for the embedding lookups
L8 = Recipe("linear", 8, "per_channel")


@dataclass(frozen=True)
class Candidate:
    name: str
    precision: Precision
    target: str
    recipe: Recipe


CANDIDATES = [
    Candidate("p8-tensor", Precision.PALETTIZE8, "iOS16", Recipe("palettize", 8, "per_tensor")),
    Candidate("p6-tensor", Precision.PALETTIZE6, "iOS16", Recipe("palettize", 6, "per_tensor")),
    Candidate("p6-group32", Precision.PALETTIZE6, "iOS18",
              Recipe("palettize", 6, "per_grouped_channel", 32, tables=Recipe("palettize", 6, "per_tensor"))),
    Candidate("p4-tensor", Precision.PALETTIZE4, "iOS16", Recipe("palettize", 4, "per_tensor")),
    Candidate("p4-tensor-t8", Precision.PALETTIZE4, "iOS16", Recipe("palettize", 4, "per_tensor", tables=T8)),
    # Groups of 32 rows hold >= 10,000 weights, where coremltools uses optimal 1-D k-means
    # (kmeans1d) instead of scikit-learn's; the 30522-row word table does not split into 32s.
    Candidate("p4-group32", Precision.PALETTIZE4, "iOS18",
              Recipe("palettize", 4, "per_grouped_channel", 32, tables=Recipe("palettize", 4, "per_tensor"))),
    Candidate("i4-block32", Precision.INT4_WEIGHT, "iOS18", Recipe("linear", 4, "per_block", 32)),
    Candidate("i4-block32-t8", Precision.INT4_WEIGHT, "iOS18", Recipe("linear", 4, "per_block", 32, tables=L8)),
    Candidate("i4-block16", Precision.INT4_WEIGHT, "iOS18", Recipe("linear", 4, "per_block", 16)),
]


def _dequantised(pkg: Path) -> dict[str, np.ndarray]:
    """name of the replaced fp16 constant -> its dequantised value, read back from the saved file by
    coremltools' MIL loader."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    ml = ct.models.MLModel(str(pkg), skip_model_load=True)
    spec = ml.get_spec()
    prog = load(spec, spec.specificationVersion, file_weights_dir=ml.weights_dir)
    out = {}
    for op in prog.functions["main"].operations:
        if not op.op_type.startswith("constexpr_"):
            continue
        if all(c.op_type.startswith("constexpr_") for c in op.outputs[0].child_ops):
            continue  # an inner link of a chain (a table whose output is scaled next)
        base = op.name
        for suffix in ("_palettized_pcs", "_palettized", "_quantized"):
            base = base.split(suffix)[0]
        out[base] = np.asarray(op.materialized_val_inference(), dtype=np.float32)
    return out


def _substitute(model: Any, base: dict[str, np.ndarray], deq: dict[str, np.ndarray]) -> tuple[Any, list[str]]:
    """A copy of the fp32 model whose parameters take the dequantised values, matched through the
    fp16 constants they became (equal values, leading rows for a folded table slice)."""
    import torch

    m = copy.deepcopy(model)
    unmatched = []
    params = {n: p for n, p in m.named_parameters() if p.ndim >= 2}
    as_fp16 = {n: p.detach().numpy().astype(np.float16).astype(np.float32) for n, p in params.items()}
    with torch.no_grad():
        for name, d in deq.items():
            b = base[name].reshape(-1, base[name].shape[-1])
            hit = None
            for pn, p in params.items():
                w = as_fp16[pn]
                if w.shape[-1] != b.shape[-1] or w.shape[0] < b.shape[0]:
                    continue
                if np.array_equal(w[: b.shape[0]], b):
                    hit = pn
                    p[: b.shape[0]] = torch.from_numpy(d.reshape(b.shape))
                    break
            if hit is None:
                unmatched.append(f"{name} {list(base[name].shape)}")
    return m, unmatched


def _measure(model: Any, ref_model: Any, feeds: list[dict[str, np.ndarray]], real: list[bool],
             index: np.ndarray) -> dict[str, Any]:
    from edgekit.core.tolerance import Tolerance
    from edgekit.check.parity import reference_outputs, task_agreement, value_metrics
    from edgekit.core.tasks import Task

    refs = reference_outputs(ref_model, feeds)
    gots = reference_outputs(model, feeds)
    masks = [f["attention_mask"] for f in feeds]
    metrics = value_metrics(Task.FEATURE_EXTRACTION, refs, gots, masks)
    sel = [i for i, r in enumerate(real) if r]
    agr = task_agreement(Task.FEATURE_EXTRACTION, [refs[i] for i in sel], [gots[i] for i in sel],
                         [masks[i] for i in sel], Tolerance(), index)
    return {"outputs": {o.name: {"cosine": o.cosine, "psnr": o.psnr, "max_abs": o.max_abs} for o in metrics},
            "worst_cosine": min(o.cosine for o in metrics),
            "recall10": {"agreed": agr.agreed, "of": agr.decisive, "share": agr.share}}


def _interp_vs(pkg: Path, deq_model: Any, ref_model: Any, feeds: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Worst cosine of the interpreter's outputs against the dequantised and the original model."""
    from edgekit.targets.coreml.mil import Interpreter
    from edgekit.check.parity import cosine, reference_outputs

    interp = Interpreter(pkg)
    deq, ref = reference_outputs(deq_model, feeds), reference_outputs(ref_model, feeds)
    worst_d, worst_r = 1.0, 1.0
    for f, d, r in zip(feeds, deq, ref):
        got = interp.run({n: f[n].astype(np.int32) for n in interp.input_names})
        keep = f["attention_mask"][0].astype(bool)
        for n in d:
            g = np.asarray(got[n], np.float32)
            dv, rv, gv = (d[n][0][keep], r[n][0][keep], g[0][keep]) if n == "last_hidden_state" else (d[n], r[n], g)
            worst_d, worst_r = min(worst_d, cosine(dv, gv)), min(worst_r, cosine(rv, gv))
    return {"interp_vs_dequantised_cosine": worst_d, "interp_vs_original_cosine": worst_r, "feeds": len(feeds)}


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser(__doc__, only="candidate names", out=harness.RESULTS / "coreml_compression",
                        out_help="the results' path without .md/.json", render_only=True)
    ap.add_argument("--interp", type=int, default=8, help="real feeds the MIL interpreter runs per candidate")
    args = ap.parse_args(argv)
    results = harness.Results(args.out, markdown, indent=1)
    if args.render_only:
        return results.render_only()

    import coremltools as ct
    import torch

    from edgekit.targets.coreml.converter import compress, mlprogram
    from edgekit.core.config import SeqLen
    from edgekit.build.stage import context
    from edgekit.check.verdict import parity_feeds
    from edgekit.model.modeling import embedded_model_path, load_model, load_tokenizer
    from edgekit.model.samples import embedding_index
    from edgekit.core.tasks import Task

    torch.set_num_threads(2)
    path = embedded_model_path("benchmarks/coreml_compression.py")
    model, tok = load_model(path, Task.FEATURE_EXTRACTION), load_tokenizer(path)
    model.eval()
    seq = SeqLen.parse(str(SEQ))
    feeds, real = parity_feeds(model, tok, Task.FEATURE_EXTRACTION, seq)
    index = embedding_index(model, tok)
    interp_feeds = [f for f, r in zip(feeds, real) if r][: args.interp]

    only = harness.names(args.only)
    rows: dict[str, Any] = {}
    if only and results.json.is_file():
        rows = {r["name"]: r for r in results.load()["candidates"]}
    shipped = set(RECIPES.items())
    meta = {"model": "all-MiniLM-L6-v2 (feature-extraction), embedded", "seq_len": SEQ,
            "feeds": {"random": len(feeds) - sum(real), "real_sentences": sum(real),
                      "index_sentences": int(index.shape[0])},
            "host": platform.platform(), "coremltools": ct.__version__}
    stamp = harness.stamp(__file__, argv)
    bases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cand in CANDIDATES:
            if only and cand.name not in only:
                continue
            print(f"== {cand.name}: {cand.recipe.describe()} tables={cand.recipe.tables and cand.recipe.tables.describe()}",
                  flush=True)
            if cand.target not in bases:
                job = harness.plan_one("coreml", "fp16", SEQ, Task.FEATURE_EXTRACTION,
                                       flags={"deployment_target": cand.target}, n_inputs=len(model.input_names))
                bases[cand.target] = mlprogram(context(model, job.options, tok))[0]
            base_ml = bases[cand.target]
            base_vals = {op.name: np.asarray(op.outputs[0].val, np.float32)
                         for op in base_ml._mil_program.functions["main"].find_ops(op_type="const")  # noqa: SLF001
                         if isinstance(op.outputs[0].val, np.ndarray)}
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ml, desc = compress(base_ml, cand.recipe)
            seconds = time.perf_counter() - t0
            pkg = Path(tmp) / f"{cand.name}.mlpackage"
            ml.save(str(pkg))
            size = sum(f.stat().st_size for f in pkg.rglob("*") if f.is_file())
            deq = _dequantised(pkg)
            rel = {n: float(np.linalg.norm(d - base_vals[n]) / np.linalg.norm(base_vals[n])) for n, d in deq.items()}
            tables = {n for n, v in base_vals.items() if n in deq and v.shape[0] >= model.config.vocab_size}
            deq_model, unmatched = _substitute(model, base_vals, deq)
            row = {
                "name": cand.name, "precision": str(cand.precision), "deployment_target": cand.target,
                "recipe": desc, "shipped": (cand.precision, cand.recipe) in shipped,
                "compress_seconds": round(seconds, 1), "size_bytes": size,
                "weights": {"tensors": len(deq), "unmatched_in_pytorch": unmatched,
                            "worst_rel_error": max(rel.values()), "worst_tensor": max(rel, key=rel.get),
                            "median_rel_error": float(np.median(list(rel.values()))),
                            "word_table_rel_error": max((rel[n] for n in tables), default=None)},
                "dequantised_pytorch": _measure(deq_model, model, feeds, real, index),
                "interpreter": _interp_vs(pkg, deq_model, model, interp_feeds),
            }
            rows[cand.name] = row
            print(json.dumps(row, indent=1), flush=True)
            order = [c.name for c in CANDIDATES]
            results.write(dict(meta, date_utc=time.strftime("%Y-%m-%d %H:%M", time.gmtime()), candidates=sorted(
                rows.values(), key=lambda r: order.index(r["name"]) if r["name"] in order else 99)), stamp)
    print(f"wrote {results.json}")
    return 0


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Core ML compression recipes on all-MiniLM-L6-v2", "",
        f"Generated by `benchmarks/coreml_compression.py` on {result['date_utc']} UTC (coremltools "
        f"{result['coremltools']}). Seq {result['seq_len']}; {result['feeds']['random']} random + "
        f"{result['feeds']['real_sentences']} real-sentence feeds; recall@10 among "
        f"{result['feeds']['index_sentences']} sentences, all ten neighbours of every real query. "
        "*Dequantised PyTorch*: the weights read back from the saved file by coremltools and put into "
        "the fp32 PyTorch model (weight error only). *Interpreter*: edgekit's MIL interpreter on the "
        "same file (first real feeds), against the dequantised model (interpreter correctness, fp16 "
        "activations) and against the original.", "",
        "| recipe | precision | target | size MB | weight rel. err (median / worst (tensor); word table) | "
        "worst cos (dequantised PyTorch) | recall@10 | interp vs dequantised | interp vs original | shipped |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["candidates"]:
        w, d, i = r["weights"], r["dequantised_pytorch"], r["interpreter"]
        rc = d["recall10"]
        tab = "—" if w["word_table_rel_error"] is None else f"{w['word_table_rel_error']:.3f}"
        lines.append(
            f"| {r['name']} | {r['precision']} | {r['deployment_target']} | {r['size_bytes'] / 1e6:.1f} | "
            f"{w['median_rel_error']:.3f} / {w['worst_rel_error']:.3f} ({w['worst_tensor']}); {tab} | {d['worst_cosine']:.4f} | "
            f"{rc['agreed']}/{rc['of']} = {rc['share']:.1%} | {i['interp_vs_dequantised_cosine']:.5f} | "
            f"{i['interp_vs_original_cosine']:.4f} | {'yes' if r['shipped'] else ''} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
