from edgekit.core.tasks import Task, infer_task


def test_infer_task_reads_the_checkpoint(tiny_model, tmp_path):
    assert infer_task(str(tiny_model("bert", Task.QUESTION_ANSWERING))) == "question-answering"
    assert infer_task(str(tiny_model("distilbert", Task.SEQUENCE_CLASSIFICATION))) == "sequence-classification"
    assert infer_task(str(tiny_model("bert", Task.MASKED_LM))) == "masked-lm"
    assert infer_task(str(tmp_path)) == "feature-extraction"
    (tmp_path / "config.json").write_text("not json")
    assert infer_task(str(tmp_path)) == "feature-extraction"


def test_output_names_per_task():
    assert Task.QUESTION_ANSWERING.output_names == ("start_logits", "end_logits")
    assert Task.FEATURE_EXTRACTION.output_names == ("last_hidden_state", "embedding")
