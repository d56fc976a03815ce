"""rs — Korean review sentiment: preprocess with kiwipiepy, fine-tune Korean ELECTRA, label review files."""

__version__ = "0.1.0"
