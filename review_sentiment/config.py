"""Training arguments: one validated dataclass, saved with every model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from review_sentiment.errors import RsError


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

    def __post_init__(self) -> None:
        checks = [
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
