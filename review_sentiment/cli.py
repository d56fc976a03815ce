"""The `rs` command line: thin typer functions that parse options, call the library and print summaries."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from review_sentiment.config import PRECISIONS, PRETRAIN_PRECISIONS, FinetuneArguments, PretrainArguments
from review_sentiment.console import ConsoleReporter, console, print_json, results
from review_sentiment.distributed import end_launched_process, is_main_process, launched_world_size
from review_sentiment.errors import Interrupted, RsError
from review_sentiment.options import LabelOptions, ReadOptions, ScoringOptions, WriteOptions
from review_sentiment.reporting import rate

EXIT_CODES = (
    "Exit codes: 0 success · 1 a problem with data, files or models (one line says what and how to fix it) · "
    "2 a usage error · 130 interrupted."
)


class _HelpTakesNoValue:
    """typer shows the --help flag as `--help <bool>`, as if it took a value."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class RsCommand(_HelpTakesNoValue, TyperCommand):
    """A command whose usage line reads `rs predict [OPTIONS] INPUT`, not typer's `{INPUT}`."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [
            piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
            for piece in super().collect_usage_pieces(ctx)
        ]


class RsGroup(_HelpTakesNoValue, TyperGroup):
    pass


app = typer.Typer(
    name="rs",
    cls=RsGroup,
    help=(
        "Korean review sentiment: clean reviews with kiwipiepy, fine-tune a Korean ELECTRA, label new files.\n\n"
        "`rs preprocess reviews.csv`\n\n"
        "`rs finetune --base kcelectra`\n\n"
        "`rs predict reviews.csv -o labeled.csv`\n\n"
        "Offline? Download a base on a connected machine and pass its folder: --base ./KcELECTRA-base-v2022. "
        "Messages and progress go to stderr; results you may redirect or pipe (`rs info`, `rs models`, --json "
        "summaries, --version) to stdout. "
        "Exit codes: 0 success, 1 a problem with data, files or models (the message says how to fix it), "
        "2 a usage error (unknown option, missing argument), 130 interrupted (Ctrl-C or kill)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        from review_sentiment import __version__

        results.print(f"rs (review-sentiment) {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", metavar="", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Korean review sentiment."""


# Options several commands share, declared once. Every flag (a bool option) has metavar="": typer would show it as
# `--resume <bool>`, as if it took a value.
ESCAPE_HELP = (
    "Write .csv/.tsv/.xlsx text exactly as it is. By default a cell starting with = + - @ (or tab, CR) gets a "
    "leading ' so that a spreadsheet shows it instead of running it as a formula; .jsonl and .parquet never change."
)
TextColumn = Annotated[
    str | None,
    typer.Option(
        "--text-col",
        help="Column with the review text [default: found by its name (review, text, 리뷰, 내용, ...) and its "
        "content (Korean text)].",
    ),
]
Encoding = Annotated[str | None, typer.Option("--encoding", help="Force the input encoding (e.g. cp949, utf-16).")]
Sheet = Annotated[
    str | None,
    typer.Option("--sheet", help="The .xlsx sheet to read: its name or number (1 = first) [default: the first sheet]."),
]
NoEscapeFormulas = Annotated[bool, typer.Option("--no-escape-formulas", metavar="", help=ESCAPE_HELP)]
Device = Annotated[str | None, typer.Option("--device", help="cpu or cuda [default: cuda when available].")]


def _training_precision(choices: tuple[str, ...], auto: str):
    """The --precision option of a training command, `auto` saying what auto picks."""
    return typer.Option(
        "auto",
        "--precision",
        metavar="|".join(choices),
        callback=lambda value: _one_of(value, "--precision", choices),
        help=f"Matmul precision (weights stay fp32) [default: auto: {auto}].",
    )


Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
JsonOutput = Annotated[
    bool,
    typer.Option(
        "--json", metavar="", help="Also print the summary as JSON on stdout (messages and progress stay on stderr)."
    ),
]
# A str, not a Path: Path() turns ./owner/name into owner/name, which would then read as a hub id.
ModelFolder = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model folder; or a Hugging Face sentiment checkpoint rs did not train: its folder, or a hub id "
        "(daekeun-ml/koelectra-small-v3-nsmc) [default: the newest model under models/].",
    ),
]
CheckpointLabels = Annotated[
    str | None,
    typer.Option(
        "--labels",
        metavar="NAMES",
        help="For a checkpoint rs did not train whose config names its classes LABEL_0, LABEL_1 (or 0, 1): what "
        "they are, in class order, as its model card says; e.g. --labels negative,positive (class 0 negative, "
        "class 1 positive). Names: negative/neutral/positive, 부정/중립/긍정, neg/neu/pos [default: from its "
        "id2label when it says, e.g. 부정/긍정].",
    ),
]
CheckpointNormalization = Annotated[
    str | None,
    typer.Option(
        "--normalization",
        metavar="rs|none",
        callback=lambda value: _one_of(value, "--normalization", ("rs", "none")),
        help="For a checkpoint rs did not train: rs cleans the text as rs models do (NFC, HTML entities, URLs, "
        "invisible characters, ㅋㅋㅋㅋ → ㅋㅋ, sentences spaced); none scores it as it is in the file. Pick what "
        "it was trained on [default: rs]. An rs model always applies its own.",
    ),
]
LabelColumn = Annotated[
    str | None,
    typer.Option("--label-col", help="Label column: positive/negative/neutral, 긍정/부정/중립, pos/neg/neu or 0/1."),
]
RatingColumn = Annotated[str | None, typer.Option("--rating-col", help="Star-rating column to bin into labels.")]
ScoringBatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="At most this many reviews per batch.")]
SCORING_BATCH_SIZE = ScoringOptions.batch_size
NoCalibration = Annotated[
    bool,
    typer.Option(
        "--no-calibration",
        metavar="",
        help="Show the model's raw probabilities, without the temperature `rs finetune` fitted on its validation "
        "split (labels are the same either way; only the confidences differ).",
    ),
]
MinConfidence = Annotated[
    float | None,
    typer.Option(
        "--min-confidence",
        min=0.0,
        max=1.0,
        metavar="P",
        help="Label a review whose confidence is below P `uncertain` (its probabilities are still written; note "
        "says which label it leaned to), to route it to a person. Pick P from `rs evaluate`'s coverage.png and "
        "table: the accuracy of the reviews kept at each P, and how many are kept.",
    ),
]
# The training options' defaults are the arguments dataclasses' (config.py holds no heavy import).
TRAINING = FinetuneArguments()
PRETRAINING = PretrainArguments()


@contextmanager
def _reported_errors():
    """Turn data/file problems into one line and exit code 1, Ctrl-C into exit code 130; no tracebacks."""
    try:
        yield
    except RsError as error:
        console.print(f"[bold red]Error:[/] {error}")
        raise typer.Exit(code=1) from None
    except OSError as error:  # a folder rs may not write to, a full disk, a file that vanished mid-run
        where = f": {error.filename}" if error.filename else ""
        console.print(f"[bold red]Error:[/] {error.strerror or error}{where}")
        raise typer.Exit(code=1) from None
    except Interrupted as interrupted:
        _ignore_further_interrupts()
        console.print(f"[bold red]Interrupted.[/] {interrupted}")
        raise typer.Exit(code=130) from None
    except KeyboardInterrupt:
        _ignore_further_interrupts()
        console.print(
            "[bold red]Interrupted.[/] Outputs are written only when complete: nothing half-written was left behind."
        )
        raise typer.Exit(code=130) from None


_EXITS_AFTER_COMMAND = False  # set by main(): this process ends with the command (not so under CliRunner)


def _ignore_further_interrupts() -> None:
    """rs is exiting after an interruption: another Ctrl-C must not kill it halfway through its shutdown."""
    import signal

    if not _EXITS_AFTER_COMMAND:
        return
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)


@app.command(cls=RsCommand, epilog=EXIT_CODES)
def preprocess(
    input_path: Path = typer.Argument(
        ..., metavar="INPUT", help="Review file: .csv, .tsv, .txt (one review per line), .jsonl, .xlsx or .parquet."
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Where to write the processed file (.csv, .tsv, .jsonl, .xlsx, .parquet) [default: "
        "data/processed/NAME.csv].",
    ),
    text_col: TextColumn = None,
    spacing: bool = typer.Option(
        False, "--spacing", metavar="", help="Also correct word spacing with kiwipiepy (rewrites slang)."
    ),
    typos: bool = typer.Option(False, "--typos", metavar="", help="Also correct common typos with kiwipiepy (slow)."),
    no_sentence_split: bool = typer.Option(
        False, "--no-sentence-split", metavar="", help="Do not separate sentences glued by punctuation."
    ),
    drop_empty: bool = typer.Option(
        False, "--drop-empty", metavar="", help="Drop rows whose text is empty after cleaning."
    ),
    drop_duplicates: bool = typer.Option(
        False, "--drop-duplicates", metavar="", help="Drop rows whose cleaned text repeats an earlier row."
    ),
    encoding: Encoding = None,
    sheet: Sheet = None,
    no_escape_formulas: NoEscapeFormulas = False,
    json_output: JsonOutput = False,
) -> None:
    """Normalize review text so `rs finetune` can pick it up.

    Keeps every column and row and adds `text_normalized` plus flag columns (flag_empty, flag_no_hangul,
    flag_duplicate). Normalization: NFC, control/zero-width cleanup, HTML entities, URLs removed, long
    repeats collapsed (ㅋㅋㅋㅋ → ㅋㅋ, prices untouched), sentences separated with kiwipiepy. The same
    recipe is stored with the model and re-applied by `rs predict`.
    """
    from review_sentiment.normalize import NormalizationRecipe
    from review_sentiment.preprocess import preprocess_file

    warned = False

    def announce(plan) -> None:
        nonlocal warned
        sheet = f", sheet '{plan.sheet}'" if plan.sheet else ""
        console.print(
            f"Reading {plan.rows:,} rows from {plan.input_path}{sheet} · text column {plan.text_column.describe()}"
        )
        warned = bool(plan.text_column.warnings)
        _print_warnings(plan.text_column.warnings)
        _print_replacing(plan.output_path, plan.output_exists)

    with _reported_errors():
        recipe = NormalizationRecipe(sentence_split=not no_sentence_split, spacing=spacing, typos=typos)
        summary = preprocess_file(
            input_path,
            output,
            recipe=recipe,
            reading=ReadOptions(text_col, encoding, sheet),
            writing=WriteOptions(escape_formulas=not no_escape_formulas),
            drop_empty=drop_empty,
            drop_duplicates=drop_duplicates,
            on_start=announce,
            reporter=ConsoleReporter(),
        )
    flagged = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in summary.flagged.items())
    console.print(
        f"Normalized with {recipe.describe()}: {summary.changed_rows} texts changed, "
        f"mean length {summary.mean_length} characters"
    )
    console.print(f"Flagged: {flagged}")
    no_hangul = summary.flagged.get("no_hangul", 0)
    if summary.rows_in and no_hangul > summary.rows_in / 2 and not warned:  # the sample at the top looked Korean
        _print_warnings(
            [
                f"{no_hangul} of {summary.rows_in} texts in '{summary.text_column}' have no Hangul: is it the review "
                "column? rs models read Korean; pass --text-col to choose another."
            ]
        )
    for reason, n in summary.dropped.items():
        console.print(f"Dropped {n} {reason} rows")
    _print_output_changes(summary.output_changes)
    replaced = " (replaced the file that was there)" if summary.replaced_output else ""
    console.print(
        f"Wrote {summary.rows_out:,} rows to [bold]{summary.output_path}[/]{replaced} in "
        f"{_timing(summary.seconds, summary.startup_seconds, summary.rows_per_second, 'rows')}"
    )
    console.print("Next: rs finetune --base kcelectra (offline: --base ./DOWNLOADED-FOLDER, or --base tfidf)")
    if json_output:
        print_json({**asdict(summary), "rows_per_second": _rounded(summary.rows_per_second)})


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        console.print(f"[yellow]Warning:[/] {warning}")


def _print_replacing(output_path: str, exists: bool) -> None:
    if exists:
        console.print(f"{output_path} exists: it will be replaced when this run is complete.")


def _rounded(per_second: float | None) -> float | None:
    return None if per_second is None else round(per_second, 1)


def _timing(seconds: float, startup_seconds: float, speed: float | None, unit: str) -> str:
    """'12.3s (start-up 2.1s, then 8,120 rows/s)': the start-up (reading the layout, loading the model and
    kiwipiepy) does not grow with the file, so the rate (the summary's property) leaves it out."""
    shown = rate(speed, unit)
    return f"{seconds:.1f}s (start-up {startup_seconds:.1f}s{', then ' + shown if shown else ''})"


@app.command(cls=RsCommand, epilog=EXIT_CODES)
def finetune(
    ctx: typer.Context,
    data: Path | None = typer.Argument(
        None, metavar="DATA", help="Labeled review file [default: the file `rs preprocess` wrote last]."
    ),
    base: str = typer.Option(
        "kcelectra",
        "--base",
        "-b",
        help="Base model: kcelectra, kcelectra-v2021, koelectra, koelectra-small, kcbert, a hub id, a local "
        "checkpoint folder, or tfidf (TF-IDF + logistic regression: fast CPU baseline).",
    ),
    revision: str | None = typer.Option(None, "--revision", help="Hub revision (overrides the alias's pin)."),
    name: str | None = typer.Option(None, "--name", help="Model name [default: BASE-DATA-TIME]."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Model folder [default: models/NAME]."),
    resume: bool = typer.Option(
        False,
        "--resume",
        metavar="",
        help="After Ctrl-C or a crash: continue from the checkpoint (models/NAME.rs-checkpoint) with the same "
        "command and options, to the model an uninterrupted run gives. No checkpoint: starts from the beginning, so "
        "scripts can always pass it. --base tfidf keeps none (it trains in seconds) and just trains again.",
    ),
    force: bool = typer.Option(
        False, "--force", "-F", metavar="", help="Replace an existing model folder; start over, deleting a checkpoint."
    ),
    text_col: TextColumn = None,
    label_col: LabelColumn = None,
    rating_col: RatingColumn = None,
    rating_scale: int | None = typer.Option(None, "--rating-scale", help="5 or 10 [default: from the data]."),
    rating_bins: str | None = typer.Option(
        None,
        "--rating-bins",
        help="NEGATIVE,NEUTRAL,POSITIVE rating ranges [default: 1-2,3,4-5 or 1-4,5-8,9-10]; leave one empty to "
        "skip it, e.g. 1-4,,9-10.",
    ),
    epochs: int = typer.Option(TRAINING.epochs, "--epochs", min=1, help="Maximum passes over the training data."),
    learning_rate: float = typer.Option(
        TRAINING.learning_rate, "--learning-rate", "--lr", min=1e-9, help="Peak AdamW learning rate."
    ),
    batch_size: int = typer.Option(TRAINING.batch_size, "--batch-size", min=1, help="Reviews per training step."),
    max_length: int = typer.Option(
        TRAINING.max_length, "--max-length", min=8, help="Tokens per review (clamped to the base model)."
    ),
    validation_fraction: float = typer.Option(
        TRAINING.validation_fraction,
        "--validation-fraction",
        min=0.01,
        max=0.49,
        help="Held-out share for model selection.",
    ),
    patience: int = typer.Option(
        TRAINING.early_stopping_patience,
        "--patience",
        min=0,
        help="Early stopping: epochs without a better macro-F1 (0: off).",
    ),
    no_class_weights: bool = typer.Option(
        False, "--no-class-weights", metavar="", help="Do not reweight rare classes."
    ),
    seed: Seed = TRAINING.seed,
    device: Device = None,
    precision: str = _training_precision(
        PRECISIONS,
        "bf16 on a GPU that has it, else fp16; bf16 on a CPU with AMX or AVX512-BF16, 1.7-1.9x faster there; fp32 "
        "on other CPUs, where bf16 is slow",
    ),
    encoding: Encoding = None,
    sheet: Sheet = None,
    json_output: JsonOutput = False,
) -> None:
    """Fine-tune a Korean ELECTRA into a positive/negative/neutral classifier, saved under models/NAME/.

    Labels come from a label column or from star ratings (5-point: 1-2 negative, 3 neutral, 4-5 positive;
    10-point: 1-4, 5-8, 9-10). A stratified validation split picks the best epoch by macro-F1. Without
    internet, download the base on a connected machine and pass its folder: --base ./KcELECTRA-base-v2022.

    A checkpoint is saved beside the model folder (models/NAME.rs-checkpoint) after every epoch and on Ctrl-C
    (at the step that was running), and deleted once the model is saved. After Ctrl-C or a crash, rerun the
    same command with --resume: it ends with the same model as an uninterrupted run. --force starts over.

    After training, a temperature is fitted on the validation split (temperature scaling) so that a confidence
    of 0.9 means about 9 in 10 right; it is saved with the model and never changes a label.

    On several GPUs or machines: torchrun --nproc_per_node N -m review_sentiment.cli finetune ... or accelerate
    launch --multi_gpu --num_processes N -m review_sentiment.cli finetune ... (pip install
    "review-sentiment[distributed]"; README: Scaling out). --batch-size stays the global batch.
    """
    from review_sentiment.finetune import finetune as run_finetune

    is_tfidf = base.lower() == "tfidf"
    if is_tfidf:
        _warn_unused_options(ctx, TRANSFORMER_ONLY_OPTIONS, "--base tfidf (TF-IDF + logistic regression)")
    with _reported_errors():
        args = FinetuneArguments(
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_length=max_length,
            epochs=epochs,
            validation_fraction=validation_fraction,
            early_stopping_patience=patience,
            class_weights=not no_class_weights,
            seed=seed,
            precision=precision,
        )
        result = run_finetune(
            data,
            base,
            args,
            base_revision=revision,
            name=name,
            output_dir=output,
            force=force,
            resume=resume,
            reading=ReadOptions(text_col, encoding, sheet),
            labels=LabelOptions(label_col, rating_col, rating_scale, rating_bins),
            device=device,
            reporter=ConsoleReporter(),
        )
    scores = f"validation accuracy {result.metrics['accuracy']:.4f}, macro-F1 {result.metrics['macro_f1']:.4f}"
    if is_tfidf:
        console.print(f"TF-IDF baseline: {scores}")
    else:
        console.print(f"Best epoch {result.best_epoch} of {len(result.history)}: {scores}")
    calibration = result.calibration
    console.print(
        f"Calibrated its confidence: temperature {calibration['temperature']:g}, validation ECE "
        f"{calibration['validation_raw']['ece']:.3f} → {calibration['validation_calibrated']['ece']:.3f} "
        "(labels unchanged; rs predict applies it, --no-calibration shows the raw scores)"
    )
    console.print(f"Saved model to [bold]{result.output_dir}[/] in {result.seconds:.0f}s")
    console.print(f"Next: rs predict reviews.csv -o labeled.csv --model {result.output_dir}")
    if json_output:
        print_json(asdict(result))


# Fine-tuning options that mean nothing to the TF-IDF baseline (no epochs, no gradient steps, no GPU).
TRANSFORMER_ONLY_OPTIONS = {
    "epochs": "--epochs",
    "learning_rate": "--learning-rate",
    "batch_size": "--batch-size",
    "max_length": "--max-length",
    "patience": "--patience",
    "no_class_weights": "--no-class-weights",
    "device": "--device",
    "precision": "--precision",
    "revision": "--revision",
}


def _warn_unused_options(ctx: typer.Context, options: dict[str, str], what: str) -> None:
    """Say which options the user passed that `what` does not use, rather than accept them silently."""
    # by name: typer carries its own copy of click, whose ParameterSource is not click's
    given = [
        flag
        for name, flag in options.items()
        if getattr(ctx.get_parameter_source(name), "name", "") in ("COMMANDLINE", "ENVIRONMENT")
    ]
    if given:
        _print_warnings([f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to {what}: ignored."])


@app.command(cls=RsCommand, epilog=EXIT_CODES)
def pretrain(
    corpus: Path = typer.Argument(
        ..., metavar="CORPUS", help="Unlabeled reviews: .csv, .tsv, .txt, .jsonl, .xlsx or .parquet."
    ),
    size: str = typer.Option(
        PRETRAINING.size, "--size", help="From scratch: mini (CPU), small (ELECTRA-Small) or base."
    ),
    base: str | None = typer.Option(
        None, "--base", "-b", help="Continue from this ELECTRA checkpoint (alias or folder) instead of scratch."
    ),
    name: str | None = typer.Option(None, "--name", help="Output name [default: pretrained-SIZE-CORPUS-TIME]."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output folder [default: models/NAME]."),
    resume: bool = typer.Option(
        False,
        "--resume",
        metavar="",
        help="After Ctrl-C or a crash: continue from the checkpoint (FOLDER/checkpoint) with the same command and "
        "options, to the weights an uninterrupted run gives; without --name/-o, the newest unfinished run of this "
        "size (or --base) and corpus. No checkpoint: starts from the beginning, so scripts can always pass it.",
    ),
    force: bool = typer.Option(
        False, "--force", "-F", metavar="", help="Start over in an existing output folder, deleting its checkpoint."
    ),
    text_col: TextColumn = None,
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after this many steps."),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", help="Stop after this many minutes of training; the schedule is planned to fit."
    ),
    epochs: float | None = typer.Option(
        None, "--epochs", help="Passes over the corpus [default: 1 unless a step or time budget is given]."
    ),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", "--lr", help="Peak learning rate [default: per size; 1/5 of it when continuing]."
    ),
    batch_size: int = typer.Option(PRETRAINING.batch_size, "--batch-size", min=1, help="Packed sequences per step."),
    max_length: int = typer.Option(PRETRAINING.max_length, "--max-length", help="Tokens per packed sequence."),
    vocab_size: int | None = typer.Option(None, "--vocab-size", help="WordPiece vocabulary size (from scratch)."),
    sampling_temperature: float | None = typer.Option(
        None,
        "--sampling-temperature",
        help="Softmax temperature of the generator's replacements [default: 2 for mini and for a --base "
        "without a generator, 1 for small, base and a --base with one]; above 1 keeps a discriminator beside a "
        "young generator from collapsing (README, Pretraining).",
    ),
    checkpoint_minutes: float = typer.Option(
        PRETRAINING.checkpoint_minutes, "--checkpoint-minutes", help="Minutes between checkpoints."
    ),
    seed: Seed = PRETRAINING.seed,
    device: Device = None,
    precision: str = _training_precision(
        PRETRAIN_PRECISIONS, "bf16 on a GPU that has it and on a CPU with AMX or AVX512-BF16; fp32 elsewhere"
    ),
    encoding: Encoding = None,
    sheet: Sheet = None,
    json_output: JsonOutput = False,
) -> None:
    """Pretrain an ELECTRA on unlabeled reviews by replaced-token detection; the result is a --base for finetune.

    From scratch (--size) it trains a cased WordPiece vocabulary on the normalized corpus, then a generator
    (masked language model, 1/4 of the width) and a discriminator that learns which tokens the generator
    replaced; loss = MLM + 50 x discriminator loss. With --base it continues a checkpoint on your reviews
    (domain-adaptive pretraining). Short reviews are packed several to a sequence, each seeing only itself.
    5 % of the reviews (at most 500) are held out: every 250 steps and at the end, the generator's loss on them
    and the discriminator's ROC AUC on its replacements (0.5: it has learned nothing) are shown and saved.
    Output: the discriminator in Hugging Face format (use it as `rs finetune --base FOLDER`), the generator in
    FOLDER/generator, and rs_pretrain.json.

    A checkpoint is saved in FOLDER/checkpoint every --checkpoint-minutes, at the end and on Ctrl-C (at the end of
    the step that was running; Ctrl-C again stops at once, keeping the last one). After Ctrl-C or a crash, rerun
    the same command with --resume: it ends with the same weights as an uninterrupted run. --force starts over.

    On several GPUs or machines: torchrun --nproc_per_node N -m review_sentiment.cli pretrain ... (README:
    Scaling out); --batch-size stays the global batch.
    """
    from review_sentiment.pretrain import pretrain as run_pretrain

    with _reported_errors():
        args = PretrainArguments(
            size=size,
            max_length=max_length,
            batch_size=batch_size,
            learning_rate=learning_rate,
            epochs=epochs,
            max_steps=max_steps,
            max_minutes=max_minutes,
            checkpoint_minutes=checkpoint_minutes,
            seed=seed,
            vocab_size=vocab_size,
            sampling_temperature=sampling_temperature,
            precision=precision,
        )
        output_dir = output or (Path("models") / name if name else None)
        result = run_pretrain(
            corpus,
            args,
            base_name=base,
            output_dir=output_dir,
            reading=ReadOptions(text_col, encoding, sheet),
            resume=resume,
            force=force,
            device=device,
            reporter=ConsoleReporter(),
        )
    final = result.final
    console.print(
        f"{result.steps} steps ({result.stopped_by}), {result.tokens_seen} tokens at "
        f"{result.tokens_per_second:.0f} tokens/s, padding {result.padding_share:.1%}"
    )
    if final:
        console.print(
            f"Last {final['step']} steps: generator loss {final['generator_loss']:.3f}, discriminator loss "
            f"{final['discriminator_loss']:.3f}, accuracy on replaced {final['replaced_accuracy']:.2f} / "
            f"original {final['original_accuracy']:.2f}"
        )
    if final.get("held_out_auc") is not None:
        console.print(
            f"Held-out reviews: generator loss {final['held_out_generator_loss']:.3f}, discriminator ROC AUC on "
            f"the generator's replacements {final['held_out_auc']:.3f} (0.5: it cannot tell them apart)"
        )
    console.print(f"Saved to [bold]{result.output_dir}[/]")
    console.print(f"Next: rs finetune labeled.csv --base {result.output_dir}")
    if json_output:
        print_json(asdict(result))


@app.command(cls=RsCommand, epilog=EXIT_CODES)
def predict(
    input_path: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="Review file to label (raw or preprocessed): .csv, .tsv, .txt, .jsonl, .xlsx or .parquet.",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Output file; its extension picks the format: .csv, .tsv, .jsonl, .xlsx, .parquet (.gz for the text "
        "ones) [default: INPUT.labeled in the input's format, e.g. reviews.labeled.xlsx; .csv for .txt].",
    ),
    model: ModelFolder = None,
    labels: CheckpointLabels = None,
    normalization: CheckpointNormalization = None,
    text_col: TextColumn = None,
    quantize: str | None = typer.Option(
        None,
        "--quantize",
        metavar="int8",
        callback=lambda value: _one_of(value, "--quantize", ("int8",)),
        help="CPU only: int8 Linear layers, 2-2.4x the fp32 speed; labels agreed with fp32 on 99.85 % of NSMC "
        "reviews (README: Prediction speed).",
    ),
    precision: str | None = typer.Option(
        None,
        "--precision",
        metavar="fp32|bf16|fp16",
        callback=lambda value: _one_of(value, "--precision", ("fp32", "bf16", "fp16")),
        help="Number format [default: bf16 on a GPU, fp32 on a CPU].",
    ),
    batch_tokens: int | None = typer.Option(
        None,
        "--batch-tokens",
        min=1,
        help="Padded tokens per batch: reviews are sorted by length and batched by tokens, not rows "
        "[default: 512 on a CPU, where small batches stay in cache; 32768 on a GPU].",
    ),
    batch_size: ScoringBatchSize = SCORING_BATCH_SIZE,
    chunk_size: int = typer.Option(
        10_000, "--chunk-size", min=1, help="Rows read, labeled and written at a time (memory stays flat)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="CPU threads for the model [default: one per usable core]."
    ),
    min_confidence: MinConfidence = None,
    no_calibration: NoCalibration = False,
    device: Device = None,
    encoding: Encoding = None,
    sheet: Sheet = None,
    no_escape_formulas: NoEscapeFormulas = False,
    resume: bool = typer.Option(
        False,
        "--resume",
        metavar="",
        help="Continue a run that Ctrl-C or a kill interrupted, from its last finished chunk; the output is the "
        "same as an uninterrupted run's. Pass the same file and options as before.",
    ),
    json_output: JsonOutput = False,
) -> None:
    """Label every review in INPUT with a fine-tuned model.

    The output keeps every input column and row in order and adds predicted_label, confidence, one
    prob_LABEL column per class and note (existing columns are never overwritten: a clash gets an _rs
    suffix). The model's own normalization is applied, so raw and preprocessed files get the same labels.

    Rows whose text is empty (or only URLs and invisible characters) get an empty label and the reason in
    note. A review longer than the model's maximum length is cut into sentences with kiwipiepy, packed into
    parts that fit, and its probabilities are the parts' average weighted by their tokens (note says into how
    many parts).

    The confidence column is the label's probability, calibrated on held-out reviews: of the reviews at 0.9,
    about 9 in 10 are right (README: Confidence and uncertain). With --min-confidence P, reviews below P are
    labeled uncertain. A model trained on two classes never says neutral: train on three (10-point stars 5-8,
    or a label column) or use --min-confidence.

    Files of any size are streamed in chunks; the output appears only when complete. Finished chunks are kept
    beside the output until then, so an interrupted run continues with --resume.

    --model also takes a Hugging Face sentiment checkpoint rs did not train, as a folder or a hub id
    (daekeun-ml/koelectra-small-v3-nsmc): its classes are named from its config's id2label (or --labels where it
    says LABEL_0, LABEL_1), and --normalization says whether rs cleans its texts first.
    """
    from review_sentiment.predict import predict_file

    if quantize and precision:
        raise typer.BadParameter("use it or --precision, not both.", param_hint="'--quantize'")

    def announce(plan) -> None:
        chosen = "newest under models/, " if plan.model_is_default else ""
        number_format = f", {plan.precision}" if plan.precision else ""
        console.print(
            f"Model: {plan.model_dir} ({chosen}{plan.model_type}, {'/'.join(plan.labels)}, {plan.device}"
            f"{number_format}; {plan.calibration})"
        )
        sheet = f", sheet '{plan.sheet}'" if plan.sheet else ""
        console.print(f"Labeling {plan.rows:,} rows of {input_path}{sheet} · text column {plan.text_column.describe()}")
        _print_checkpoint(plan)
        _print_warnings(plan.text_column.warnings)
        _print_replacing(plan.output_path, plan.output_exists)

    with _reported_errors():
        summary = predict_file(
            input_path,
            output,
            model_dir=model,
            reading=ReadOptions(text_col, encoding, sheet),
            scoring=ScoringOptions(
                device,
                quantize or precision,
                batch_size,
                batch_tokens,
                threads,
                labels=_names(labels),
                normalization=normalization,
                calibration=not no_calibration,
                min_confidence=min_confidence,
            ),
            writing=WriteOptions(escape_formulas=not no_escape_formulas),
            chunk_rows=chunk_size,
            resume=resume,
            on_start=announce,
            reporter=ConsoleReporter(),
        )
    distribution = ", ".join(
        f"{label} {n:,} ({n / summary.scored:.1%})" if summary.scored else f"{label} 0"
        for label, n in summary.label_counts.items()
    )
    timing = _timing(summary.seconds, summary.startup_seconds, summary.reviews_per_second, "reviews")
    console.print(f"Labeled {summary.scored:,} of {summary.rows:,} rows in {timing}: {distribution}")
    if summary.resumed_chunks:
        console.print(f"Resumed: {summary.resumed_chunks} of {summary.chunks} chunks came from the interrupted run")
    if summary.unscored:
        rows = "1 row has" if summary.unscored == 1 else f"{summary.unscored:,} rows have"
        console.print(f"{rows} no text to score and got no label (reason in the note column)")
    if summary.split:
        console.print(
            f"{summary.split} review(s) longer than the model's maximum length were scored in parts (see note)"
        )
    for wanted, name in summary.renamed_columns.items():
        console.print(f"The input already has a '{wanted}' column: the prediction is in '{name}'")
    _print_output_changes(summary.output_changes)
    replaced = " (replaced the file that was there)" if summary.replaced_output else ""
    console.print(f"Wrote [bold]{summary.output_path}[/]{replaced}")
    if json_output:
        print_json({**asdict(summary), "reviews_per_second": _rounded(summary.reviews_per_second)})


def _print_checkpoint(plan) -> None:
    """For a checkpoint rs did not train: which class is which, and the normalization its texts get."""
    if plan.checkpoint:
        console.print(f"Checkpoint rs did not train: {plan.checkpoint} · normalization {plan.normalization}")


def _names(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated option (--labels negative,positive) as its names."""
    return None if value is None else tuple(name.strip() for name in value.split(","))


def _one_of(value: str | None, option: str, choices: tuple[str, ...]) -> str | None:
    """A usage error (exit code 2) for a value the option does not take."""
    if value is not None and value not in choices:
        raise typer.BadParameter(f"takes {' or '.join(choices)}, not {value!r}.", param_hint=f"'{option}'")
    return value


def _print_output_changes(changes: dict[str, int]) -> None:
    for what, count in changes.items():
        console.print(f"Note: {count} {what}")


@app.command(cls=RsCommand, epilog=EXIT_CODES)
def evaluate(
    data: Path = typer.Argument(..., metavar="DATA", help="Labeled review file (label or star-rating column)."),
    model: ModelFolder = None,
    labels: CheckpointLabels = None,
    normalization: CheckpointNormalization = None,
    output_dir: Path | None = typer.Option(
        None,
        "--output-dir",
        "-o",
        help="Where to write the reports [default: MODEL/evaluations/DATA; for a hub id evaluations/OWNER--NAME/DATA].",
    ),
    text_col: TextColumn = None,
    label_col: LabelColumn = None,
    rating_col: RatingColumn = None,
    rating_scale: int | None = typer.Option(
        None, "--rating-scale", help="5 or 10 [default: the scale the file states (4/5, ★★★★☆), else the model's]."
    ),
    rating_bins: str | None = typer.Option(
        None, "--rating-bins", help="NEGATIVE,NEUTRAL,POSITIVE rating ranges, e.g. 1-4,,9-10 (as for finetune)."
    ),
    batch_size: ScoringBatchSize = SCORING_BATCH_SIZE,
    quantize: str | None = typer.Option(
        None,
        "--quantize",
        metavar="int8",
        callback=lambda value: _one_of(value, "--quantize", ("int8",)),
        help="Score as `rs predict --quantize int8` would (CPU only).",
    ),
    min_confidence: MinConfidence = None,
    no_calibration: NoCalibration = False,
    device: Device = None,
    encoding: Encoding = None,
    sheet: Sheet = None,
    no_escape_formulas: NoEscapeFormulas = False,
    json_output: JsonOutput = False,
) -> None:
    """Measure a model on labeled reviews it has not seen: accuracy, macro-F1, per-class scores, confusion.

    Labels are read as by `rs finetune`; star ratings are binned as the model's were (its stored bins and
    scale) unless --rating-bins or --rating-scale is given. The model's own normalization is applied. Writes
    metrics.json, confusion_matrix.png (counts and shares of each gold row) and misclassified.csv (most
    confident mistakes first). A three-class model on two-class data also gets scores restricted to the two
    classes present, in the table and as a second panel of the chart.

    Calibration: ECE (top-label confidence, 15 equal-mass bins), Brier score and NLL, raw and with the model's
    temperature, drawn in reliability.png. coverage.png and the coverage table show the accuracy of the reviews
    kept when those below a confidence are set aside: choose rs predict --min-confidence P there (the smallest
    P whose accuracy you accept; what it keeps is what a person need not read). With --min-confidence P, the
    reviews kept and their scores.

    --model also takes a Hugging Face sentiment checkpoint rs did not train (a folder or a hub id), as for
    `rs predict`: see --labels and --normalization.
    """
    from review_sentiment.evaluate import evaluate_file

    def announce(plan) -> None:
        chosen = "newest under models/, " if plan.model_is_default else ""
        scored_as = ", --quantize int8" if quantize else ""
        console.print(
            f"Model: {plan.model_dir} ({chosen}{plan.model_type}, {'/'.join(plan.labels)}, {plan.device}{scored_as}; "
            f"{plan.calibration})"
        )
        console.print(
            f"Evaluating {plan.labeled:,} labeled of {plan.rows:,} rows of {data} · text column "
            f"{plan.text_column.describe()} · labels from the {plan.label_source}"
        )
        _print_checkpoint(plan)
        _print_warnings(plan.warnings)

    with _reported_errors():
        report = evaluate_file(
            data,
            model,
            output_dir=output_dir,
            reading=ReadOptions(text_col, encoding, sheet),
            labels=LabelOptions(label_col, rating_col, rating_scale, rating_bins),
            scoring=ScoringOptions(
                device,
                quantize,
                batch_size,
                calibration=not no_calibration,
                min_confidence=min_confidence,
                labels=_names(labels),
                normalization=normalization,
            ),
            writing=WriteOptions(escape_formulas=not no_escape_formulas),
            on_start=announce,
            reporter=ConsoleReporter(),
        )
    speed = rate(report.reviews_per_second, "reviews")
    console.print(
        f"Evaluated {report.evaluated:,} of {report.rows:,} rows in {report.seconds:.1f}s (start-up "
        f"{report.startup_seconds:.1f}s, scoring {report.scoring_seconds:.1f}s{', ' + speed if speed else ''}); "
        f"skipped: {report.unlabeled_note}, {report.skipped_empty} with empty text"
    )
    _print_scores(report.scores, f"All {len(report.model_labels)} model classes")
    if report.restricted_scores:
        _print_scores(
            report.restricted_scores,
            f"Restricted to the classes in the data ({', '.join(report.data_labels)}): argmax over those only",
        )
    _print_calibration(report)
    console.print(f"Wrote {', '.join(report.files.values())}")
    if json_output:
        print_json({**asdict(report), "reviews_per_second": _rounded(report.reviews_per_second)})


def _print_calibration(report) -> None:
    from rich.table import Table

    calibration, raw = report.calibration, report.calibration["raw"]
    measures = "ECE {ece:.4f} · Brier {brier:.4f} · NLL {nll:.4f}"
    console.print(f"[bold]Calibration[/] ({calibration['binning']}):")
    console.print(f"  raw probabilities: {measures.format(**raw)}")
    if calibration["calibrated"]:
        console.print(
            f"  with the model's temperature {calibration['temperature']:g}: "
            f"{measures.format(**calibration['calibrated'])}  (what rs predict shows)"
        )
    else:
        console.print(f"  {calibration['applied']}")
    console.print(
        "  by predicted label: "
        + "; ".join(
            f"{label} {row['rows']:,} reviews, mean confidence {row['confidence']:.3f}, {row['accuracy']:.1%} right"
            for label, row in calibration["by_predicted_label"].items()
        )
    )
    table = Table("min confidence", "reviews kept", "accuracy of the kept", title="Setting aside the least confident")
    for row in report.coverage:
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        table.add_row(f"{row['min_confidence']:g}", f"{row['kept']:,} ({row['coverage']:.1%})", accuracy)
    console.print(table)
    kept = report.min_confidence
    if kept:
        accuracy = "no review kept" if kept["accuracy"] is None else f"accuracy {kept['accuracy']:.4f} on them"
        console.print(
            f"--min-confidence {kept['min_confidence']:g}: {kept['kept']:,} reviews kept ({kept['coverage']:.1%}), "
            f"{accuracy} (all reviews: {report.scores['accuracy']:.4f}); {kept['uncertain']:,} would be labeled "
            "uncertain"
        )


def _print_scores(scores: dict, title: str) -> None:
    from rich.table import Table

    console.print(f"[bold]{title}[/]: accuracy {scores['accuracy']:.4f} · macro-F1 {scores['macro_f1']:.4f}")
    table = Table("class", "precision", "recall", "F1", "support")
    for label, row in scores["per_class"].items():
        table.add_row(label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    console.print(table)
    matrix = Table("gold \\ predicted", *scores["labels"])
    for label, counts in zip(scores["labels"], scores["confusion_matrix"], strict=True):
        matrix.add_row(label, *(str(n) for n in counts))
    console.print(matrix)


@app.command(cls=RsCommand, epilog=EXIT_CODES)
def models(
    name: str | None = typer.Argument(
        None, metavar="NAME", help="A model (its name under --models-dir, or a folder): show all its details."
    ),
    models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Folder that holds the models."),
    json_output: bool = typer.Option(
        False, "--json", metavar="", help="Print JSON: the list, or with NAME the model's whole rs_meta.json."
    ),
) -> None:
    """List the models under models/, one line each (newest first), on stdout: created, kind, classes, validation
    macro-F1 and the name, last and whole. `rs models NAME` shows one model in full."""
    from review_sentiment.modelstore import list_models, model_details

    with _reported_errors():
        if name is not None:
            folder = Path(name) if Path(name).is_dir() else models_dir / name
            if not folder.is_dir():
                raise RsError(f"No model {name!r} under {models_dir}/: `rs models` lists the models there.")
            details, meta = model_details(folder)
            if json_output:
                print_json(meta)
            else:
                for key, value in details.items():
                    results.print(f"{key}: {value}", markup=False)
            return
        rows = list_models(models_dir)
    if json_output:
        print_json(rows)
        return
    if not rows:
        if not models_dir.is_dir():
            console.print(f"There is no folder {models_dir}/ (--models-dir). Train a model with `rs finetune`.")
            return
        console.print(f"No models under {models_dir}/. Train one with `rs finetune`.")
        return
    # The name comes last, whole (to copy into --model), so that a long one cannot push the other columns out of line.
    results.print(f"{'CREATED':<10}  {'KIND':<10}  {'CLASSES':<11}  {'VAL-F1':>6}  NAME", markup=False)
    for row in rows:
        f1 = row["validation_macro_f1"]
        classes = ",".join(label[:3] for label in row["labels"]) or "-"
        results.print(
            f"{row['created'][:10]:<10}  {_short_kind(row):<10}  {classes:<11}  "
            f"{f'{f1:.4f}' if f1 is not None else '-':>6}  {row['name']}",
            markup=False,
        )
    console.print(f"Details: rs models NAME · all as JSON: rs models --json ({len(rows)} in {models_dir}/)")


def _short_kind(row: dict) -> str:
    """tfidf, pretrained, or the transformer's architecture (electra, bert); an unreadable folder says so."""
    kind = row["kind"]
    short = {"pretrained base": "pretrained", "transformer": row.get("architecture") or "transformer"}.get(kind, kind)
    return short if len(short) <= 10 else short[:9] + "…"


@app.command(cls=RsCommand, epilog=EXIT_CODES)
def info(json_output: bool = typer.Option(False, "--json", metavar="", help="Print JSON.")) -> None:
    """Versions of rs, Python, torch, transformers, kiwipiepy and whether CUDA is available (for bug reports),
    on stdout: `rs info > info.txt`."""
    from review_sentiment.info import environment_info

    environment = environment_info()
    if json_output:
        print_json(environment)
        return
    for key, value in environment.items():
        results.print(f"{key}: {value}", markup=False)


def _stop_like_ctrl_c(signal_number, frame) -> None:
    raise KeyboardInterrupt


@app.command(cls=RsCommand, epilog=EXIT_CODES)
def report(
    input_path: Path = typer.Argument(
        ..., metavar="INPUT", help="A file rs predict wrote, or any review file with --model (labeled first)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="The HTML page [default: INPUT.report.html]; its files go to OUTPUT_files/."
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Model folder: labels INPUT first when it has no predicted_label column (as rs predict does), and "
        "scores the clauses that mention each aspect (without it, aspects take the whole review's label).",
    ),
    by: str | None = typer.Option(None, "--by", help="Split by this column too: product, store, app version."),
    date_col: str | None = typer.Option(
        None, "--date-col", help="Date column for the sentiment over time [default: found by name and content]."
    ),
    aspects: str | None = typer.Option(
        None,
        "--aspects",
        help="Aspects to split sentiment by, e.g. 배송,가격,품질; add the words that mention one as "
        "배송=배송/택배/배달 [default: the most mentioned nouns].",
    ),
    min_group: int = typer.Option(20, "--min-group", min=1, help="Leave out --by groups with fewer labeled reviews."),
    examples: int = typer.Option(5, "--examples", min=1, help="Example reviews per sentiment and aspect."),
    text_col: TextColumn = None,
    label_col: LabelColumn = None,
    rating_col: RatingColumn = None,
    device: Device = None,
    encoding: Encoding = None,
    sheet: Sheet = None,
    json_output: JsonOutput = False,
) -> None:
    """Report what customers praise and complain about: one HTML page that works offline, and its numbers.

    Sections: overview (each sentiment's share, rows not scored and why), over time (per day, week or month,
    when the file has a date column: 2024-05-01, 2024.05.01, 24.05.01, 2024년 5월 1일 ...), by --by group (most
    negative first), the words that set each sentiment apart (kiwipiepy; negation kept), aspects (the
    sentiment of the clauses that mention 배송, 가격 ...; with example clauses), and example reviews; with a
    gold label or rating column also accuracy, macro-F1, the confusion matrix and the most confident mistakes.
    Beside the page, OUTPUT_files/ holds report.json, a CSV per table and the charts as PNG. The file is read a
    chunk at a time: memory stays flat however many rows it has.
    """
    from review_sentiment.report import ReportOptions, report_file

    with _reported_errors():
        summary = report_file(
            input_path,
            output,
            model_dir=model,
            options=ReportOptions(
                by=by, date_col=date_col, aspects=aspects, min_group_rows=min_group, examples=examples
            ),
            reading=ReadOptions(text_col, encoding, sheet),
            labels=LabelOptions(label_col, rating_col),
            scoring=ScoringOptions(device),
            reporter=ConsoleReporter(),
        )
    _print_warnings(summary.warnings)
    shares = ", ".join(f"{label} {count:,}" for label, count in summary.label_counts.items())
    console.print(f"Reported {summary.labeled:,} labeled of {summary.rows:,} rows ({shares}) in {summary.seconds:.1f}s")
    console.print(f"Wrote [bold]{summary.output_path}[/] (open it in a browser) and {summary.files_dir}/")
    if json_output:
        print_json(asdict(summary))


def main() -> None:
    import signal
    import sys

    global _EXITS_AFTER_COMMAND
    _EXITS_AFTER_COMMAND = True

    # `kill` (SIGTERM) unwinds like Ctrl-C: temporary files are removed, progress is kept for --resume.
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    if not is_main_process():  # torchrun / accelerate launch: one process speaks for all
        console.quiet = results.quiet = True
    if launched_world_size() == 1:
        app()
        return
    try:
        app()
    except SystemExit as exit_request:  # typer ends every command this way
        code = exit_request.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        end_launched_process(code or 0)


if __name__ == "__main__":  # torchrun -m review_sentiment.cli, accelerate launch -m review_sentiment.cli
    main()
