"""Distillation of BERT-family teachers into half-depth DistilBERT students.

Modules (import them directly; this package imports nothing heavy so that ``edgekit --help`` stays fast):

* :mod:`edgekit.distill.student`  teacher -> DistilBERT student with copied weights (``edgekit distill init``)
* :mod:`edgekit.distill.losses`   the triple loss, encoder-only losses, task losses
* :mod:`edgekit.distill.data`     text -> Arrow token cache, dynamic masking, length-grouped batches
* :mod:`edgekit.distill.train`    Accelerate training loop with checkpoints and exact resume
* :mod:`edgekit.distill.task`     task-specific distillation (question answering, sequence classification)
* :mod:`edgekit.distill.compare`  student vs teacher embedding agreement
* :mod:`edgekit.distill.card`     the distillation card
* :mod:`edgekit.distill.default`  the embedded default run (``edgekit distill``): :class:`DefaultOptions`
* :mod:`edgekit.distill.finetune` task fine-tuning without a teacher (``edgekit finetune``)

Every run takes a typed, frozen options object (``DefaultOptions``, ``TrainConfig``, ``TaskConfig``);
the flags that fill them are ``edgekit.cli.distill``'s: no module here sees argparse.
"""
