"""Training arguments: one validated dataclass, saved with every model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from review_sentiment.errors import RsError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRETRAIN_PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class FinetuneArguments:
    """Fine-tuning settings. Defaults follow the published KcELECTRA / KoELECTRA NSMC recipes."""

    learning_rate: float = 5e-5
    """Peak AdamW learning rate, reached after warmup and decayed linearly to zero."""
    batch_size: int = 32
    """Reviews per training step."""
    max_length: int = 128
    """Tokens per review, [CLS] and [SEP] included; clamped to what the base model supports."""
    epochs: int = 3
    """Passes over the training split (fewer if early stopping triggers)."""
    warmup_ratio: float = 0.1
    """Share of all steps spent warming the learning rate up from zero."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases and LayerNorm)."""
    validation_fraction: float = 0.1
    """Share of labeled rows held out, stratified by label, to pick the best epoch."""
    early_stopping_patience: int = 2
    """Stop after this many epochs without a better validation macro-F1 (0: never stop early)."""
    class_weights: bool = True
    """Weight the loss by inverse class frequency so rare classes (usually neutral) count."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    seed: int = 42
    """Seed for the split, the classifier head's initialization and the batch order."""
    precision: str = "auto"
    """Matmul precision: fp32, bf16 (mixed: fp32 weights, bf16 matmuls), fp16 (GPU only) or auto (bf16 on a GPU
    that has it, else fp16; bf16 on a CPU with AMX or AVX512-BF16, where it is 1.7-1.9x faster; fp32 on other
    CPUs)."""

    def __post_init__(self) -> None:
        checks = [
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.max_length >= 8, "max_length must be at least 8"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must not be negative"),
            (0 < self.validation_fraction < 0.5, "validation_fraction must be in (0, 0.5)"),
            (self.early_stopping_patience >= 0, "early_stopping_patience must not be negative"),
            (self.max_grad_norm > 0, "max_grad_norm must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise RsError(f"{message}; got {self.to_dict()}.")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelSize:
    """Discriminator shape for `rs pretrain --size`; the generator shares its embeddings at a fraction of its width."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    embedding_size: int
    generator_hidden_size: int
    vocab_size: int
    learning_rate: float
    sampling_temperature: float = 1.0


# small and base follow ELECTRA-Small/Base (Clark et al. 2020, Table 6; configure_pretraining.py). mini is a
# CPU-sized model, half as wide as ELECTRA-Small with a third of its layers: on 2 cores it trains at about
# 8,000 tokens/s (twice the speed of 4 layers x 256), and with a CPU-hour budget more tokens beat more width.
# Its peak rate is ELECTRA-Small's 5e-4: at 2e-3 the post-LayerNorm encoder collapsed (gradient norms 6-28 after
# warmup, and a fine-tuning probe of it fell to 0.41 accuracy against 0.83 at 5e-4; bench/pretrain_sweep.py).
MODEL_SIZES = {
    "mini": ModelSize(128, 4, 2, 512, 128, 32, 16000, 5e-4, sampling_temperature=2.0),
    "small": ModelSize(256, 12, 4, 1024, 128, 64, 32000, 5e-4),
    "base": ModelSize(768, 12, 12, 3072, 768, 256, 32000, 2e-4),
}


@dataclass
class PretrainArguments:
    """ELECTRA replaced-token-detection settings. Defaults follow the ELECTRA paper and reference code."""

    size: str = "mini"
    """Model size preset for pretraining from scratch: mini (CPU), small (ELECTRA-Small), base."""
    max_length: int = 128
    """Tokens per packed sequence; several reviews are packed into each."""
    batch_size: int = 32
    """Packed sequences per step."""
    learning_rate: float | None = None
    """Peak learning rate [default: the size preset's from scratch, 1/5 of it when continuing a checkpoint]."""
    warmup_ratio: float = 0.05
    """Share of the planned steps spent warming up; then linear decay to zero."""
    weight_decay: float = 0.01
    """AdamW weight decay (ELECTRA: 0.01)."""
    mask_prob: float = 0.15
    """Share of tokens masked for the generator, chosen anew for every batch."""
    disc_weight: float = 50.0
    """λ in loss = MLM + λ·discriminator loss (ELECTRA: 50)."""
    uniform_replacements: float = 0.0
    """Share of the masked positions the discriminator sees replaced by a uniformly random token instead of a
    generator sample."""
    sampling_temperature: float | None = None
    """Temperature of the generator's softmax when sampling replacements [default: the size preset's from
    scratch (mini: 2, small and base: ELECTRA's 1); when continuing a checkpoint, 1 with its own generator and 2
    with a new one]."""
    epochs: float | None = None
    """Passes over the corpus [default: 1 when neither --max-steps nor --max-minutes is given]."""
    max_steps: int | None = None
    """Stop after this many steps."""
    max_minutes: float | None = None
    """Stop after this much training time; the learning-rate schedule is planned to end there."""
    checkpoint_minutes: float = 10.0
    """Save a resumable checkpoint this often (and on Ctrl-C)."""
    seed: int = 42
    """Seed for initialization, packing order, masking and sampling."""
    vocab_size: int | None = None
    """WordPiece vocabulary size when pretraining from scratch [default: the size preset's]."""
    precision: str = "auto"
    """Matmul precision: fp32, bf16 (mixed: fp32 weights) or auto (bf16 on a GPU that has it and on a CPU with
    AMX or AVX512-BF16; fp32 elsewhere: fp16 would need loss scaling)."""

    def __post_init__(self) -> None:
        checks = [
            (self.size in MODEL_SIZES, f"size must be one of {', '.join(MODEL_SIZES)}"),
            (self.precision in PRETRAIN_PRECISIONS, f"precision must be one of {', '.join(PRETRAIN_PRECISIONS)}"),
            (self.max_length >= 16, "max_length must be at least 16"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.learning_rate is None or self.learning_rate > 0, "learning_rate must be positive"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (0 < self.mask_prob < 1, "mask_prob must be in (0, 1)"),
            (self.disc_weight > 0, "disc_weight must be positive"),
            (0 <= self.uniform_replacements <= 1, "uniform_replacements must be in [0, 1]"),
            (
                self.sampling_temperature is None or self.sampling_temperature > 0,
                "sampling_temperature must be positive",
            ),
            (self.epochs is None or self.epochs > 0, "epochs must be positive"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be at least 1"),
            (self.max_minutes is None or self.max_minutes > 0, "max_minutes must be positive"),
            (self.checkpoint_minutes > 0, "checkpoint_minutes must be positive"),
            (self.vocab_size is None or self.vocab_size >= 100, "vocab_size must be at least 100"),
        ]
        for ok, message in checks:
            if not ok:
                raise RsError(f"{message}; got {self.to_dict()}.")

    @property
    def model_size(self) -> ModelSize:
        return MODEL_SIZES[self.size]

    def to_dict(self) -> dict:
        return asdict(self)
