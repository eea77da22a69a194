"""Task Library worker: runs inside the separate tflite-support environment, never imported by edgekit.

tflite-support 0.4.4 needs protobuf < 4, which the main environment cannot have, so edgekit runs
this file with that environment's python and talks to it through JSON on stdin/stdout. Only the
standard library and ``tflite_support`` are available here (no torch, no edgekit).

Requests (one JSON object on stdin):

* ``{"cmd": "ping"}`` -> versions.
* ``{"cmd": "metadata", "model": src, "out": dst, "kind": "qa"|"classifier", "vocab": path,
  "labels": [...], "inputs": {"ids": tensor, "mask": tensor, "segment_ids": tensor},
  "outputs": {"start_logits": tensor, "end_logits": tensor} | {"probability": tensor},
  "name": str, "description": str}`` -> writes ``dst`` with TFLite Model Metadata.
* ``{"cmd": "run", "model": path, "kind": "qa", "items": [{"context": c, "question": q}]}`` or
  ``{"cmd": "run", "model": path, "kind": "classifier", "items": [{"text": t}]}`` -> results.
* ``{"cmd": "read_metadata", "model": path}`` -> the metadata JSON and packed file names.

The reply is one JSON object on stdout: ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback


def _ping(req):
    import flatbuffers
    import google.protobuf
    import tflite_support

    return {"tflite_support": getattr(tflite_support, "__version__", "0.4.4"),
            "protobuf": google.protobuf.__version__, "flatbuffers": getattr(flatbuffers, "__version__", "?")}


def _write_atomic(path, data):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tasklib.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _metadata(req):
    from tflite_support.metadata_writers import bert_nl_classifier, metadata_info, writer_utils
    from tensorflow_lite_support.metadata.python.metadata_writers import metadata_writer

    with open(req["model"], "rb") as f:
        buf = bytearray(f.read())
    ins = req["inputs"]
    tokenizer_md = metadata_info.BertTokenizerMd(req["vocab"])
    general = metadata_info.GeneralMd(name=req.get("name") or None, description=req.get("description") or None,
                                      version=req.get("version") or None, author="edgekit")
    if req["kind"] == "classifier":
        with tempfile.TemporaryDirectory() as tmp:
            labels = os.path.join(tmp, "labels.txt")
            with open(labels, "w", encoding="utf-8") as f:
                f.write("\n".join(req["labels"]) + "\n")
            input_md = metadata_info.BertInputTensorsMd(buf, ins["ids"], ins["mask"], ins["segment_ids"],
                                                        tokenizer_md=tokenizer_md)
            output_md = metadata_info.ClassificationTensorMd(
                name="probability",
                description="Class scores (logits: apply softmax for probabilities), one per label.",
                label_files=[metadata_info.LabelFileMd(file_path=labels)],
                tensor_type=writer_utils.get_output_tensor_types(buf)[0],
                tensor_name=req["outputs"]["probability"],
            )
            writer = bert_nl_classifier.MetadataWriter.create_from_metadata_info(
                buf, general_md=general, input_md=input_md, output_md=output_md)
            out = writer.populate()
            meta = writer.get_metadata_json()
    elif req["kind"] == "qa":
        input_md = metadata_info.BertInputTensorsMd(buf, ins["ids"], ins["mask"], ins["segment_ids"],
                                                    tokenizer_md=tokenizer_md)
        order = writer_utils.get_output_tensor_names(buf)
        outs = req["outputs"]
        if sorted(order) != sorted(outs.values()):
            raise ValueError(f"output tensors in the model {order} do not match {sorted(outs.values())}")
        descriptions = {"start_logits": "Logits of each token being the answer's first token.",
                        "end_logits": "Logits of each token being the answer's last token."}
        by_tensor = {t: metadata_info.TensorMd(name=n, description=descriptions[n], tensor_name=t) for n, t in outs.items()}
        output_md = [by_tensor[t].create_metadata() for t in order]  # metadata follows the model's tensor order
        writer = metadata_writer.MetadataWriter.create_from_metadata(
            buf,
            model_metadata=general.create_metadata(),
            input_metadata=input_md.create_input_tesnor_metadata(),
            output_metadata=output_md,
            associated_files=input_md.get_tokenizer_associated_files(),
            input_process_units=input_md.create_input_process_unit_metadata(),
        )
        out = writer.populate()
        meta = writer.get_metadata_json()
    else:
        raise ValueError(f"unknown kind {req['kind']!r}")
    _write_atomic(req["out"], bytes(out))
    return {"metadata": json.loads(meta), "size_bytes": len(out)}


def _read_metadata(req):
    from tflite_support import metadata

    displayer = metadata.MetadataDisplayer.with_model_file(req["model"])
    return {"metadata": json.loads(displayer.get_metadata_json()),
            "packed_files": sorted(displayer.get_packed_associated_file_list())}


def _run(req):
    from tflite_support.task import text

    results = []
    if req["kind"] == "qa":
        qa = text.BertQuestionAnswerer.create_from_file(req["model"])
        for item in req["items"]:
            res = qa.answer(item["context"], item["question"])
            results.append([{"text": a.text, "start": a.pos.start, "end": a.pos.end, "logit": a.pos.logit}
                            for a in res.answers])
    elif req["kind"] == "classifier":
        clf = text.BertNLClassifier.create_from_file(req["model"])
        for item in req["items"]:
            res = clf.classify(item["text"])
            cats = res.classifications[0].categories
            results.append([{"label": c.category_name, "index": c.index, "score": c.score} for c in cats])
    else:
        raise ValueError(f"unknown kind {req['kind']!r}")
    return {"results": results}


COMMANDS = {"ping": _ping, "metadata": _metadata, "run": _run, "read_metadata": _read_metadata}


def main() -> int:
    try:
        req = json.loads(sys.stdin.read())
        reply = {"ok": True, **COMMANDS[req["cmd"]](req)}
    except Exception as e:  # the caller turns this into an edgekit error with the message
        reply = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=4)}
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
