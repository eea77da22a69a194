"""``edgekit shrink``: from a user's fine-tuned model to the one file to ship, in one call.

1. TRAIN is split into a training part and a held-out slice (``shrinker.data``); DEV is read only
   to score the exported candidates.
2. The student's layer map is chosen on the held-out slice: every candidate copy of the teacher is
   scored, the best few are trained briefly (probes) and the best trained one is kept (``shrinker.layers``).
3. The student is task-distilled within the budget, in resumable segments whose checkpoints are
   scored on the held-out slice; the best is kept (``shrinker.train``).
4. Teacher and student are exported to the target at every precision it has (length buckets where
   the target takes them, plus the baseline: the teacher's fp32 file at fixed length), validated
   and gated on DEV (``build.plan``, ``quality.gate``).
5. Each file answers DEV as the apps run it, in its own process, several passes (``shrinker.measure``);
   F1, ΔF1 against the teacher with its paired-bootstrap interval, the same-answer rate, size and ms
   per question go into one report with the chosen file (``shrinker.report``); ``bundle`` ships it.
   A file left undecided by its interval that would be faster than the choice answers twice as many
   DEV questions (the teacher too), round by round, until it is decided or DEV (``--eval-max``) has no more.

The state of a run is ``OUT/shrink_state.json``; ``resume="auto"`` continues after the last step
that finished (and training from its newest checkpoint).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgekit.core.errors import UsageError
from edgekit.distill.task import QA, RECIPES, SEQ_CLS
from edgekit.quality.gate import mean_score
from edgekit.shrinker.report import Candidate, ShrinkReport

DEFAULT_MAX_DROP = 2.0
#: Steps of general distillation when ``--general-data`` is given without ``--general-steps``: the better of
#: the two lengths measured on SQuAD (squad_quality.md, "General distillation before the task" and "A general
#: phase twice as long": 1,500 steps +0.72 F1 [+0.12, +1.32], 3,000 steps +1.25 [+0.65, +1.88] over none,
#: +0.53 [+0.04, +0.99] over 1,500), about an hour on 2 cores for a MiniLM student at 256 tokens.
DEFAULT_GENERAL_STEPS = 3000
#: Held-out TRAIN rows that choose the layer map and the checkpoint. 100 could not rank checkpoints 1-2
#: F1 apart (shrink.md, third run); 1,000 questions cost about 20 s per scoring of a 3-layer MiniLM.
DEFAULT_HELDOUT = 1000
#: Options a resumed run may change: they steer only what is still to run, never what was recorded.
RESUME_MAY_CHANGE = ("resume", "progress", "threads", "bundle", "max_f1_drop", "eval_max", "out")
#: Options a resumed run may change by redoing what they decided (the state keys dropped, in run order):
#: another ``--seq-len`` or ``--precision`` re-exports and re-times both models' files from the kept
#: student, without training again; other DEV questions also re-answer the teacher in PyTorch.
RESUME_REDOES = {"seq_len": ("files", "measured", "extended"), "precision": ("files", "measured", "extended"),
                 "arm64": ("files", "measured", "extended"),
                 "eval_n": ("files", "teacher_dev", "measured", "extended"), "timed_n": ("measured",),
                 "passes": ("measured",)}
#: Option names a state written before 2026-12-06 used (now the API's and the flags' names).
RENAMED_OPTIONS = {"max_drop": "max_f1_drop", "n_timed": "timed_n"}


@dataclass(frozen=True)
class ShrinkOptions:
    """Everything one shrink run needs; checked when made (a bad option is a usage error before any work)."""

    model: str
    task: str
    data: str
    eval_data: str
    target: str
    out: str
    layers: Any = None                 # a count (the map is measured), a map [0, 2, 4], or None (half)
    budget_minutes: float | None = None
    steps: int | None = None
    max_f1_drop: float = DEFAULT_MAX_DROP
    precision: str = "all"
    seq_len: str | None = None         # the candidates' length buckets (QA; default DEFAULT_QA_BUCKETS)
    bundle: str | None = None          # an app: android | ios
    resume: str | None = None          # None | "auto"
    threads: int | None = None
    passes: int = 3
    timed_n: int = 100                 # DEV questions timed per pass and file
    eval_n: int | None = None          # the first N DEV questions (default: all)
    eval_max: int | None = None        # undecided files are scored on up to N DEV questions (default: all)
    heldout_n: int = DEFAULT_HELDOUT   # held-out slice of TRAIN (at most a fifth of it)
    seed: int = 42
    progress: bool = True
    training: dict[str, Any] = field(default_factory=dict)  # TaskConfig fields (batch_size, lr, max_len …)
    arm64: tuple[str, ...] | None = None  # QEMU CPU models: every file's parity also in its aarch64 runtime
    general_data: str | None = None    # unlabelled text: the student's general distillation before its task
    general_steps: int | None = None   # its steps (default DEFAULT_GENERAL_STEPS)

    def __post_init__(self) -> None:
        from edgekit.core.tasks import Task
        from edgekit.shrinker.layers import parse_layers

        try:
            task = Task.parse(self.task).value
        except Exception as e:  # noqa: BLE001 - the one task parser's error, as a usage error
            raise UsageError(str(e)) from None
        if task not in (QA, SEQ_CLS):
            raise UsageError(f"shrink trains question-answering or sequence-classification students, not {task}")
        object.__setattr__(self, "task", task)
        object.__setattr__(self, "layers", parse_layers(self.layers))
        for name in ("data", "eval_data"):
            p = Path(getattr(self, name))
            if not p.is_file():
                raise UsageError(f"--{name.replace('_', '-')} {p} does not exist")
        if not (Path(self.model) / "config.json").is_file():
            raise UsageError(f"--model {self.model} is not a model folder (no config.json)")
        if self.budget_minutes is not None and self.steps is not None:
            raise UsageError("give --budget-minutes or --steps, not both")
        if self.budget_minutes is not None and self.budget_minutes <= 0:
            raise UsageError("--budget-minutes must be positive")
        if self.steps is not None and self.steps < 1:
            raise UsageError("--steps must be at least 1")
        if not 0 <= self.max_f1_drop <= 100:
            raise UsageError("--max-f1-drop must be between 0 and 100 (F1 or accuracy points)")
        if self.resume not in (None, "auto"):
            raise UsageError("--resume takes auto (continue the run in --out)")
        if self.passes < 1 or self.timed_n < 1 or self.heldout_n < 1:
            raise UsageError("passes, timed questions and the held-out slice must be at least 1")
        if self.eval_n is not None and self.eval_n < 1:
            raise UsageError("the DEV question count must be at least 1")
        if self.eval_max is not None and (self.eval_n is None or self.eval_max < self.eval_n):
            raise UsageError("--eval-max N scores undecided files on up to N DEV questions after the first --eval-n: "
                             "give --eval-n, and an --eval-max at least as large")
        if self.general_steps is not None:
            if self.general_data is None:
                raise UsageError("--general-steps sets the general distillation's length: give --general-data too")
            if isinstance(self.general_steps, bool) or not isinstance(self.general_steps, int) \
                    or self.general_steps < 1:
                raise UsageError(f"--general-steps must be an integer, at least 1, not {self.general_steps!r}")
        if self.general_data is not None:
            from edgekit.distill.corpus import check_text_file

            check_text_file(self.general_data)  # refused now, not after the layer map's probes
        # every training setting is checked by the one validator (TaskConfig) before any work
        training_config(self, student=self.model, out=self.out, data=self.data)  # threads too
        if self.seq_len is not None:
            object.__setattr__(self, "seq_len", str(check_buckets(self.seq_len, task)))
        if self.bundle is not None:
            from edgekit.apps.bundle import apps

            if self.bundle not in apps():
                from edgekit.core.errors import unknown_choice

                raise unknown_choice("app", self.bundle, sorted(apps()))
            if apps()[self.bundle][0] != self.target:
                raise UsageError(f"--bundle {self.bundle} ships a {apps()[self.bundle][0]} file; this run's "
                                 f"--target is {self.target}")
            if self.task != QA:
                raise UsageError("--bundle ships question-answering apps; this run is sequence classification")
        from edgekit.core import registry

        if self.target not in registry.converters():
            from edgekit.core.errors import unknown_choice

            raise unknown_choice("target", self.target, sorted(registry.converters()))
        if self.seq_len is not None and "enumerated" not in registry.get(self.target).seq_kinds:
            raise UsageError(f"--seq-len: {self.target} files take one fixed length; give a target that takes "
                             "length buckets (`edgekit targets` lists them) or leave --seq-len out")
        if self.arm64 is not None:
            from edgekit.check.arm64 import unavailable

            cpus = tuple(str(c).strip() for c in self.arm64 if str(c).strip())
            if not cpus:
                raise UsageError("--arm64-cpus needs at least one CPU model, e.g. neoverse-n1,max")
            object.__setattr__(self, "arm64", cpus)
            # refused now, not after hours of training with every file "arm64: not checked"
            why = unavailable(self.target)
            if why:
                raise UsageError(f"--arch arm64: {why}")


def precisions_of(target: str, precision: str) -> list[str]:
    """The precisions a run exports: every one the target has (``all``), or those named."""
    from edgekit.core import registry
    from edgekit.core.precision import Precision

    conv = registry.get(target)
    have = [p.value for p in conv.precisions]
    if precision == "all":
        return have
    out = []
    for name in precision.split(","):
        p = Precision.parse(name.strip()).value if name.strip() != "int8" else next(
            (h for h in have if h.startswith("int8")), "int8")
        if p not in have:
            raise UsageError(f"{target} has no {p} precision (it has {', '.join(have)})")
        out.append(p)
    return list(dict.fromkeys(out))


def check_buckets(text: str, task: str) -> Any:
    """``--seq-len`` of a shrink run: enumerated QA buckets ending at the baseline's length, so that every
    candidate reads the same windows as the baseline and ΔF1 measures the model and precision alone."""
    from edgekit.core.config import SeqLen
    from edgekit.core.geometry import DEFAULT_QA_LENGTH

    if task != QA:
        raise UsageError(f"--seq-len: classification files are exported at a fixed {SEQ_CLS_LENGTH} tokens; "
                         "length buckets are for question answering")
    sl = SeqLen.parse(text)
    if sl.kind != "enumerated" or sl.max != DEFAULT_QA_LENGTH:
        raise UsageError(f"--seq-len lists length buckets ending at {DEFAULT_QA_LENGTH} (the baseline's windows), "
                         f"e.g. 64,128,192,256,320,{DEFAULT_QA_LENGTH}; not {text}")
    return sl


#: Sequence-classification files are exported at this fixed length: the student's training length.
SEQ_CLS_LENGTH: int = RECIPES[(SEQ_CLS, True)]["max_len"]


def lengths_of(target: str, task: str, seq_len: str | None = None) -> tuple[list[int], list[int] | None]:
    """(the fixed length of the baseline, the buckets where the target takes several lengths, else None).
    ``seq_len``: the run's ``--seq-len`` buckets instead of ``DEFAULT_QA_BUCKETS``."""
    from edgekit.core import registry
    from edgekit.core.geometry import DEFAULT_QA_BUCKETS, DEFAULT_QA_LENGTH

    if task != QA:
        return [SEQ_CLS_LENGTH], None
    if "enumerated" not in registry.get(target).seq_kinds:  # (ShrinkOptions refuses --seq-len for such targets)
        return [DEFAULT_QA_LENGTH], None
    buckets = check_buckets(seq_len, task).values if seq_len is not None else DEFAULT_QA_BUCKETS
    return [DEFAULT_QA_LENGTH], list(buckets)


class _Run:
    """One shrink run: the options, OUT, its state file and the console lines."""

    def __init__(self, opts: ShrinkOptions, say: Callable[[str], Any]) -> None:
        self.opts = opts
        self.out = Path(opts.out).resolve()  # absolute in memory; "$OUT/…" in the state file (_relocate)
        self.work = self.out / "work"
        self.state_path = self.out / "shrink_state.json"
        self.t0 = time.perf_counter()
        self._say = say
        self.state: dict[str, Any] = {}

    def say(self, what: str) -> None:
        self._say(f"shrink: {what} ({time.perf_counter() - self.t0:.0f} s)")

    def save(self) -> None:
        from edgekit.core.record import atomic_write_text

        atomic_write_text(self.state_path, json.dumps(_relocate(self.state, str(self.out), OUT), indent=2))

    def open(self) -> None:
        from edgekit.model.preflight import check_out

        check_out(self.out)
        if self.state_path.is_file():
            if self.opts.resume != "auto":
                raise UsageError(f"{self.out} holds a shrink run already: continue it with --resume auto, or give "
                                 "another --out")
            self.state = json.loads(self.state_path.read_text())
            old_out = self.state.get("options", {}).get("out")
            if old_out and Path(old_out).is_absolute() and Path(old_out) != self.out:
                # a state written before paths were relative to OUT, in a folder since moved
                self.state = _relocate(self.state, str(Path(old_out)), str(self.out))
            self.state = _relocate(self.state, OUT, str(self.out))
            before = {RENAMED_OPTIONS.get(k, k): v for k, v in self.state.get("options", {}).items()}
            self.state["options"] = before
            now = self._options()
            changed = sorted(k for k in now if k not in RESUME_MAY_CHANGE and before.get(k) != now[k])
            redo = [k for k in changed if k in RESUME_REDOES]
            changed = [k for k in changed if k not in RESUME_REDOES]
            if changed:
                raise UsageError(f"{self.out} holds a shrink run with other options ("
                                 + ", ".join(f"{k}: {before.get(k)!r} then, {now[k]!r} now" for k in changed)
                                 + "); resume it with the same options, or give another --out")
            self.say(f"resuming the run in {self.out}")
            if redo:
                self._redo(redo, before, now)
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            self.state = {"options": self._options()}
            self.save()

    def forget(self, keys: tuple[str, ...], student: bool = False) -> None:
        """Drop what ``keys`` decided (and the student's copy with ``student``); the files folder and the
        report go with "files", so OUT never holds old and new files side by side."""
        for d in keys:
            self.state.pop(d, None)
        if student and self.state.get("student"):
            shutil.rmtree(self.state.pop("student"), ignore_errors=True)
        if "files" in keys:
            shutil.rmtree(self.out / "files", ignore_errors=True)
            shutil.rmtree(self.out / "bundle", ignore_errors=True)
            for name in ("report.md", "report.json", "report.html"):
                (self.out / name).unlink(missing_ok=True)

    def _options(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self.opts)))

    def _redo(self, keys: list[str], before: dict[str, Any], now: dict[str, Any]) -> None:
        """Forget what ``keys`` decided (the files, their times, the teacher's DEV answers) and record the
        new options; the files folder goes too, so it never holds old and new files side by side."""
        drop = {d for k in keys for d in RESUME_REDOES[k]}
        self.say("redoing the " + ", ".join(sorted(drop)) + " for the new " + ", ".join(
            f"{k} ({before.get(k)!r} then, {now[k]!r} now)" for k in keys))
        self.forget(tuple(drop))
        self.state["options"] = {**before, **{k: now[k] for k in keys}}
        self.save()


#: How the state file spells OUT: a run folder moved elsewhere (another disk, another machine) resumes there.
OUT = "$OUT"


def _relocate(value: Any, old: str, new: str) -> Any:
    """``value`` (the state's JSON tree) with every path (keys too) under ``old`` moved under ``new``."""
    if isinstance(value, dict):
        return {_relocate(k, old, new): _relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, old, new) for v in value]
    if isinstance(value, str) and (value == old or value.startswith(old + "/")):
        return new + value[len(old):]
    return value


def _scorer(task: str, questions: Any, geometry_len: int) -> Callable[[Path], list[float]]:
    """Each question's F1 (QA) or 0/100 (classification) of a PyTorch folder on ``questions`` (the
    held-out slice of TRAIN); their mean is the metric."""
    from edgekit.model.modeling import load_model
    from edgekit.quality.evaluate import evaluate_subject, pytorch_subject
    from edgekit.quality.gate import per_question_scores

    def score(folder: Path) -> list[float]:
        model = load_model(str(folder), task)
        labels = list(getattr(model.config, "labels", ()) or ())
        s = pytorch_subject(str(folder), task, model=model, max_seq_len=geometry_len)
        r = evaluate_subject(s, "held-out slice of TRAIN", questions, progress=False, labels=labels)
        return per_question_scores(task, questions, r.predictions, labels)

    return score


#: Each probe of the layer-map choice (``shrinker.layers``) trains for about this share of the training
#: (its steps, or its minutes: the probes come before and on top of ``--budget-minutes``) ...
PROBE_SHARE = 0.1
#: ... and at most this many steps (300 separated two maps of the shared SQuAD model by 20 F1 on DEV).
PROBE_MAX_STEPS = 300


def training_config(opts: ShrinkOptions, **where: Any) -> Any:
    """The student's ``TaskConfig`` (the layer-map probes' and the training's): the distillation recipe of
    ``edgekit.distill.task.RECIPES`` (the one every task run defaults to; measured on the committed half-depth
    student, ``benchmarks/results/squad_quality.md``), then ``opts.training``; ``where`` names the student,
    the output folder, the data and the length. A bad setting is a usage error."""
    from edgekit.distill.task import TaskConfig

    base = dict(task=opts.task, teacher=opts.model, student=opts.model, data=opts.data, out=opts.out,
                seed=opts.seed, threads=opts.threads)
    try:
        return TaskConfig(**{**base, **opts.training, **where})
    except TypeError as e:  # a key TaskConfig does not have
        raise UsageError(f"training setting: {e}") from None


def probe_length(opts: ShrinkOptions, n_train: int, batch_size: int) -> dict[str, Any]:
    """One layer-map probe's length: a share of the training's steps (``--steps``, else an epoch of the
    ``n_train`` rows, at most ``PROBE_MAX_STEPS``) or of its ``--budget-minutes``."""
    if opts.budget_minutes is not None:
        return {"budget_minutes": opts.budget_minutes * PROBE_SHARE}
    steps = opts.steps if opts.steps is not None else max(1, n_train // batch_size)
    return {"steps": max(1, min(PROBE_MAX_STEPS, round(steps * PROBE_SHARE)))}


def teacher_budget(teacher: str) -> dict[str, Any] | None:
    """The teacher's own training budget from its card, when it has one: ``finetune.json`` (the shared
    models), ``finetune_card.json`` or ``task_distillation_card.json`` (edgekit's)."""
    for name in ("finetune_card.json", "task_distillation_card.json", "finetune.json"):
        p = Path(teacher) / name
        if p.is_file():
            try:
                card = json.loads(p.read_text())
            except ValueError:
                continue
            steps = card.get("steps")
            batch = card.get("batch_size", card.get("batch"))
            if steps:
                return {"card": name, "steps": int(steps), "batch": batch,
                        "examples_seen": card.get("examples_seen")}
    return None


def budget_note(teacher: dict[str, Any] | None, student_steps: int | None, student_batch: int | None,
                general_steps: int | None = None) -> str:
    """The teacher's training budget beside the student's, said when the student trained longer; a general
    distillation (``general_steps`` on unlabelled text) is named as the student's extra budget."""
    extra = (f" Before its task steps the student also trained {general_steps:,} steps on unlabelled text (general "
             "distillation), outside that comparison, as the teacher's base had its pre-training."
             if general_steps else "")
    if teacher is None:
        return "The teacher's own training budget is not known (no training card beside it)." + extra
    t = f"{teacher['steps']:,} steps" + (f" of {teacher['batch']}" if teacher.get("batch") else "")
    line = f"Teacher's own training budget ({teacher['card']}): {t}."
    if student_steps is not None:
        s_seen = student_steps * (student_batch or 0)
        t_seen = teacher.get("examples_seen") or teacher["steps"] * (teacher.get("batch") or 0)
        longer = student_steps > teacher["steps"] if not (s_seen and t_seen) else s_seen > t_seen
        if longer:
            line += (f" The student trained longer ({student_steps:,} steps of {student_batch}): its ratio to the "
                     "teacher overstates what distillation keeps against a teacher trained as long.")
    return line + extra


def shrink_run(opts: ShrinkOptions, say: Callable[[str], Any] | None = None,
               command: str | None = None) -> ShrinkReport:
    """Run every step of ``opts``; write OUT/report.md|json|html; return the report."""
    from edgekit.core.console import console

    say = say or (lambda line: console.print(line, markup=False, highlight=False))
    run = _Run(opts, say)
    run.open()
    _quiet(run.out)
    task = opts.task
    st = run.state
    # 1. the held-out slice of TRAIN
    from edgekit.shrinker import data as D

    if "split" not in st:
        split = D.split_train(task, opts.data, run.work / "data", opts.heldout_n)
        st["split"] = split.to_dict()
        run.save()
        run.say(f"TRAIN: {split.n_train} rows to train on, {split.n_heldout} held out to choose the layer map and "
                "the checkpoint (DEV is used only for the exported files)")
    heldout = D.heldout_questions(task, Path(st["split"]["heldout"]))
    from edgekit.core.geometry import DEFAULT_QA_LENGTH

    score_each = _scorer(task, heldout, DEFAULT_QA_LENGTH if task == QA else SEQ_CLS_LENGTH)
    # what the probes of the layer map and the training share: one place, so neither can miss a setting
    common = dict(data=st["split"]["train"], progress=opts.progress)
    # 2. the layer map
    from edgekit.shrinker.layers import choose_layer_map

    if "layer_map" not in st:
        run.say("choosing the student's layer map on the held-out slice of TRAIN")
        probe_budget = probe_length(opts, st["split"]["n_train"], training_config(opts).batch_size)

        def probe(init: Path, out: Path) -> Path:
            from edgekit.distill.task import distill_task

            distill_task(training_config(opts, student=str(init), out=str(out), **probe_budget, **common))
            return out

        st["layer_map"] = choose_layer_map(opts.model, opts.layers, run.work / "layers", score_each, run.say, probe)
        st["layer_map"]["probe"] = probe_budget
        run.save()
        run.say(f"layer map {st['layer_map']['map']}")
    # 3. general distillation of the cut (with --general-data), then its task training
    init = run.work / "layers" / "init"
    if opts.general_data is not None:
        init = _general(run, init)
    from edgekit.shrinker.train import train_student

    if not st.get("training", {}).get("done"):
        cfg = training_config(opts, student=str(init), out=str(run.work / "train"),
                              steps=opts.steps, budget_minutes=opts.budget_minutes, **common)
        run.say("distilling the student (checkpoints scored on the held-out slice of TRAIN; Ctrl-C and "
                "--resume auto continue)")
        train_student(cfg, run.out / "work" / "best", score_each, st, run.save, run.say)
    else:
        from edgekit.shrinker.train import decide_again

        if decide_again(st["training"], run.out / "work" / "best", run.work / "train", score_each, run.say):
            run.forget(("files", "measured", "extended"), student=True)
        run.save()
    student = st.get("student")
    if student is None:  # the kept checkpoint, under a name of its own (files are named after their model's folder)
        from edgekit.core.record import model_stem

        dest = run.out / f"{model_stem(opts.model)}-{len(st['layer_map']['map'])}layers"
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(run.out / "work" / "best" / "student", dest)
        student = st["student"] = str(dest)
        run.save()
    # 4. export, validate, gate
    files = st.get("files")
    if files is None:
        files = _export_all(run, student)
        st["files"] = files
        run.save()
    # 5. measure on DEV and report
    rep = _measure_and_report(run, student, files, command)
    if opts.bundle:
        rep.bundle = _bundle(run, rep, student)
        from edgekit.shrinker.report import write

        write(rep, run.out)
    return rep


def _general(run: _Run, init: Path) -> Path:
    """The student's general distillation (``distill.task``'s phase ``GENERAL``) on ``--general-data``,
    from the cut ``init``: the folder the task training starts from. Checkpointed: an interrupted run
    continues it with ``--resume auto``. DEV is not read; the text is the user's, unlabelled."""
    from edgekit.distill.task import GENERAL, distill_task

    opts, st = run.opts, run.state
    out = run.work / "general"
    if st.get("general", {}).get("done"):
        return out
    steps = opts.general_steps or DEFAULT_GENERAL_STEPS
    run.say(f"general distillation of the student: {steps} steps on {opts.general_data} (Ctrl-C and --resume auto "
            "continue)")
    # The whole text is read and the steps draw their paragraphs from all of it in a random order, as the
    # measured probe did: the first paragraphs of a dump are its first articles (Wikipedia's start: "A" topics).
    card = distill_task(training_config(opts, phase=GENERAL, student=str(init), out=str(out), data=opts.general_data,
                                        steps=steps, checkpoint_every=max(1, steps // 10), resume="auto",
                                        progress=opts.progress))
    history = json.loads((out / "general_distillation_card.json").read_text()).get("history") or [{}]
    st["general"] = {"done": True, "text": opts.general_data,
                     "card": {k: card.get(k) for k in ("steps", "batch_size", "examples", "elapsed_s", "lr")},
                     "first_loss": history[0].get("loss"), "final_loss": history[-1].get("loss")}
    run.save()
    run.say(f"general distillation: {card.get('steps')} steps, loss {st['general']['first_loss']} -> "
            f"{st['general']['final_loss']}")
    return out


def _quiet(folder: Path) -> None:
    from edgekit.core.console import quiet_backends

    quiet_backends(folder)


def _export_all(run: _Run, student: str) -> list[dict[str, Any]]:
    """Export the baseline and every (model, precision) candidate; return what was written."""
    from edgekit.build import plan as planner
    from edgekit.core.config import SeqLen
    from edgekit.quality.gate import Gate, GateOptions
    from edgekit.shrinker.data import write_calibration
    from edgekit.shrinker.report import arm64_summary

    opts = run.opts
    precisions = precisions_of(opts.target, opts.precision)
    fixed, buckets = lengths_of(opts.target, opts.task, opts.seq_len)
    calibration = None
    if "int8-static" in precisions:
        calibration = write_calibration(opts.task, Path(run.state["split"]["train"]), run.work / "calibration.txt")
    written: list[dict[str, Any]] = []
    seq = SeqLen("enumerated", tuple(buckets)) if buckets else SeqLen("fixed", tuple(fixed))
    plans = [("teacher", opts.model, ["fp32"], SeqLen("fixed", tuple(fixed)), True)]
    for who, model in (("teacher", opts.model), ("student", student)):
        ps = [p for p in precisions if not (buckets is None and who == "teacher" and p == "fp32")]
        if ps:  # (without buckets the teacher's fp32 file is the baseline already)
            plans.append((who, model, ps, seq, False))
    gate = Gate(GateOptions(Path(opts.eval_data), None, opts.eval_n, opts.threads))
    references: dict[str, Any] = {}  # each model's PyTorch answers on DEV, evaluated once by the gate
    for who, model, ps, sl, baseline in plans:
        folder = run.out / "files" / who
        run.say(f"exporting the {who}: {opts.target} {','.join(ps)} at {','.join(map(str, sl.values))} tokens "
                "(validated, gated on DEV against its own PyTorch model)")
        # The calibration text belongs to the int8-static files only (the plan refuses it for a list without them).
        jobs = planner.plan(opts.target, ",".join(ps), [sl], opts.task,
                            calibration=calibration if "int8-static" in ps else None)
        jobs = [j for j in jobs if not j.skipped]
        if not jobs:
            continue
        gate.reference = references.get(who)
        result = planner.run(jobs, model, opts.task, folder, gate=gate, validate=True, verbose=False,
                             arm64=opts.arm64)
        references[who] = gate.reference
        for rec in result.records:
            written.append({"model": who, "precision": rec.precision.value, "lengths": list(sl.values),
                            "artifact": str((folder / rec.artifact).relative_to(run.out)), "source": model,
                            "baseline": baseline, "status": rec.status.value,
                            "gate": (rec.quality.verdict if rec.quality is not None else None),
                            "size_mb": round(rec.size_bytes / 1e6, 3) if rec.size_bytes else None,
                            "reason": rec.reason, "arm64": arm64_summary(rec.arm64) if opts.arm64 else None})
            run.say(f"  {rec.artifact}: {rec.status.value}")
    from edgekit.measure.render import write_reports

    for who in ("teacher", "student"):
        if (run.out / "files" / who).is_dir():
            write_reports(run.out / "files" / who, title=f"edgekit shrink: the {who}'s files")
    return written


def _measure_and_report(run: _Run, student: str, files: list[dict[str, Any]], command: str | None) -> ShrinkReport:
    from edgekit.core.threads import choose as choose_threads
    from edgekit.measure.bench import cpu_name
    from edgekit.shrinker.data import dev_data
    from edgekit.shrinker.measure import measure_files
    from edgekit.shrinker.report import choose, write

    opts, st = run.opts, run.state
    task = opts.task
    metric = "f1" if task == QA else "accuracy"
    name, dev_all = dev_data(task, opts.eval_data)
    n_dev = len(dev_all) if opts.eval_n is None else min(opts.eval_n, len(dev_all))
    n_cap = len(dev_all) if opts.eval_max is None else min(opts.eval_max, len(dev_all))
    # The teacher in PyTorch, windowing text as the baseline file does: the reference of every Δ.
    _teacher_answers(run, name, dev_all, n_dev)
    threads = choose_threads(opts.threads)
    todo = [f for f in files if f["status"] in ("validated", "parity-failed")]
    if "measured" not in st:
        run.say(f"measuring {len(todo)} files on DEV: {opts.passes} passes, each file in its own process, "
                f"{threads} threads")
        st["measured"] = measure_files([(run.out / f["artifact"], f["source"]) for f in todo], task,
                                       str(opts.eval_data), opts.eval_n, opts.timed_n, opts.passes, threads,
                                       run.out, say=run.say)
        st["machine"] = {"cpu": cpu_name(), "threads": threads, "passes": opts.passes}
        run.save()
    while True:
        cands = _candidates(run, files, dev_all, n_dev)
        chosen, reason = choose(cands, opts.max_f1_drop, n_dev, len(dev_all))
        # An undecided file that would be faster than the choice could change it: score it on more DEV
        # questions (twice as many per round, up to --eval-max), never a slower one (it cannot win).
        failed = {a for a, e in st.get("extended", {}).items() if e.get("error")}
        more = [c for c in cands if c.verdict == "undecided" and c.status == "validated" and c.ms_per_question
                and c.n < n_cap and c.artifact not in failed
                and (chosen is None or c.ms_per_question < chosen.ms_per_question)]
        if not more:
            break
        n_new = min(n_cap, 2 * max(c.n for c in more))
        run.say(f"undecided: {', '.join(c.label for c in more)}; scoring on the first {n_new} DEV items")
        _answer_more(run, name, dev_all, more, n_new, threads)
    measured = st["measured"]
    loads = [x for f in measured.values() for la in f.get("load_average", []) for x in la[:1]]
    machine = dict(st.get("machine", {}))
    machine.update({"n_timed": min(opts.timed_n, n_dev), "load_min": round(min(loads), 2) if loads else None,
                    "load_max": round(max(loads), 2) if loads else None})
    tr = st.get("training", {})
    card = tr.get("card", {})
    # the report keeps each checkpoint's mean; each question's score stays in the state
    training = {**tr, "scores": [{k: v for k, v in s.items() if k != "each"} for s in tr.get("scores", [])]}
    teacher_metric = mean_score(_teacher_scores(st, dev_all)[:n_dev])
    rep = ShrinkReport(task=task, metric=metric, target=opts.target, teacher=opts.model, student=student,
                       out=str(run.out), max_drop=opts.max_f1_drop, n_dev=n_dev, teacher_metric=round(teacher_metric, 3),
                       candidates=cands, chosen=chosen.artifact if chosen else None, reason=reason,
                       layer_map=st.get("layer_map", {}), training=training, general=st.get("general", {}),
                       budget_note=budget_note(teacher_budget(opts.model), card.get("steps"), card.get("batch_size"),
                                               (st.get("general") or {}).get("card", {}).get("steps")),
                       machine=machine, command=command)
    write(rep, run.out)
    run.say(f"report: {run.out / 'report.md'}")
    return rep


def _predictions(raw: dict[str, Any]) -> dict[str, Any]:
    """Stored answers (``[text, start, end]`` for QA, a class index) as the scorers take them."""
    from edgekit.quality.evaluate import Prediction

    return {k: (Prediction(*v) if isinstance(v, list) else v) for k, v in raw.items()}


def _teacher_answers(run: _Run, name: str, dev_all: Any, n: int) -> None:
    """The teacher's PyTorch answers to DEV items ``len(known)`` … ``n - 1``, added to the state."""
    from edgekit.model.modeling import load_model
    from edgekit.quality.evaluate import Prediction, evaluate_subject, pytorch_subject
    from edgekit.shrinker.data import dev_keyed

    st, task = run.state, run.opts.task
    td = st.setdefault("teacher_dev", {"predictions": {}, "n": 0})
    start = td.get("n", len(td["predictions"]))
    if start >= n:
        return
    run.say(f"the teacher in PyTorch on DEV items {start + 1}–{n}")
    tm = load_model(run.opts.model, task)
    labels = list(getattr(tm.config, "labels", ()) or ())
    fixed, _ = lengths_of(run.opts.target, task)
    ref = evaluate_subject(pytorch_subject(run.opts.model, task, model=tm, max_seq_len=fixed[0]), name,
                           dev_all[start:n], progress=False, labels=labels)
    got = {k: ([p.text, p.start, p.end] if isinstance(p, Prediction) else p) for k, p in ref.predictions.items()}
    td["predictions"].update(dev_keyed(task, got, start))
    td.update({"n": n, "labels": labels})
    run.save()


def _teacher_scores(st: dict[str, Any], dev_all: Any) -> list[float]:
    from edgekit.quality.gate import per_question_scores

    td = st["teacher_dev"]
    n = td.get("n", len(td["predictions"]))
    return per_question_scores(st["options"]["task"], dev_all[:n], _predictions(td["predictions"]), td["labels"])


def _answer_more(run: _Run, name: str, dev_all: Any, cands: list[Candidate], n: int, threads: int) -> None:
    """The teacher and each of ``cands`` answer the DEV items up to ``n``; kept in the state's ``extended``."""
    from edgekit.shrinker.measure import answer_more

    st = run.state
    _teacher_answers(run, name, dev_all, n)
    ext = st.setdefault("extended", {})
    by_start: dict[int, list[Candidate]] = {}
    for c in cands:
        by_start.setdefault(c.n, []).append(c)  # (set on every scored candidate: the items it answered)
    src = {f["artifact"]: f["source"] for f in st["files"]}
    for start, group in sorted(by_start.items()):
        got = answer_more([(run.out / c.artifact, src[c.artifact]) for c in group], run.opts.task,
                          str(run.opts.eval_data), start, n, threads, run.out, say=run.say)
        for c in group:
            r = got[str(run.out / c.artifact)]
            e = ext.setdefault(c.artifact, {"n": start, "predictions": {}})
            if r.get("error"):
                e["error"] = r["error"]
                continue
            e["predictions"].update(r["predictions"])
            e["n"] = n
    run.save()


def _candidates(run: _Run, files: list[dict[str, Any]], dev_all: Any, n_dev: int) -> list[Candidate]:
    """Every file as a report row: its answers (the first ``n_dev`` DEV items, and more where it was
    extended) scored against the teacher's answers to the same items."""
    from edgekit.quality.evaluate import same_answer_rate
    from edgekit.quality.gate import paired_interval, per_question_scores, verdict

    opts, st = run.opts, run.state
    task = opts.task
    td = st["teacher_dev"]
    labels = td["labels"]
    ref_preds = _predictions(td["predictions"])
    ref_scores = _teacher_scores(st, dev_all)
    measured, ext = st["measured"], st.get("extended", {})
    base_ms = next((measured.get(str(run.out / f["artifact"]), {}).get("ms_per_question") for f in files
                    if f["baseline"]), None)
    cands: list[Candidate] = []
    for f in files:
        m = measured.get(str(run.out / f["artifact"]), {})
        c = Candidate(model=f["model"], precision=f["precision"], buckets=f["lengths"], artifact=f["artifact"],
                      status=f["status"], size_mb=f["size_mb"], baseline=f["baseline"], gate=f.get("gate"),
                      passes_ms=m.get("passes_ms", []), ms_per_question=m.get("ms_per_question"),
                      arm64=f.get("arm64"))
        if f["status"] not in ("validated",):
            c.note = f.get("reason")
        if m.get("error"):
            c.note = m["error"]
        e = ext.get(f["artifact"], {})
        if e.get("error"):
            c.note = f"answering more DEV questions failed: {e['error']}"
        if m.get("predictions") is not None:
            n = max(n_dev, e.get("n") or 0)
            p = _predictions({**m["predictions"], **e.get("predictions", {})})
            scores = per_question_scores(task, dev_all[:n], p, labels)
            c.n = n
            c.metric = round(mean_score(scores), 3)
            c.delta = round(c.metric - mean_score(ref_scores[:n]), 3)
            lo, hi = paired_interval(ref_scores[:n], scores)
            c.interval = [round(lo, 3), round(hi, 3)]
            c.verdict = verdict(-c.delta, (lo, hi), opts.max_f1_drop)
            c.same_answer = round(same_answer_rate(p, ref_preds), 4)
        if base_ms and c.ms_per_question:
            c.speedup = round(base_ms / c.ms_per_question, 2)
        cands.append(c)
    return cands


def _bundle(run: _Run, rep: ShrinkReport, student: str) -> dict[str, Any]:
    """Bundle exactly the chosen file for ``--bundle`` (its source model: the teacher or the student)."""
    from edgekit.apps.bundle import BundleOptions, bundle

    chosen = rep.chosen_candidate
    if chosen is None:
        raise UsageError(f"--bundle {run.opts.bundle}: no file was chosen ({rep.reason}); nothing bundled")
    source = student if chosen.model == "student" else run.opts.model
    dest = run.out / "bundle" / run.opts.bundle
    card = bundle(BundleOptions(app=run.opts.bundle, model=source, out=dest, precision=chosen.precision,
                                artifact=run.out / chosen.artifact))
    run.say(f"bundled {chosen.artifact} for {run.opts.bundle} in {dest}")
    return {"app": run.opts.bundle, "out": str(dest), "artifact": chosen.artifact, "sha256": card.get("sha256")}


__all__ = ["ShrinkOptions", "ShrinkReport", "Candidate", "shrink_run"]
