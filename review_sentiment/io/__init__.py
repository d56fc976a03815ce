"""Reading and writing review files: formats, encodings, cells, column names, and the files of `rs preprocess`.

reading     TableSource, read_table: every cell as text, the encoding and delimiter detected
writing     TableWriter, write_table: atomic, chunk by chunk; check_output_path before any work
cells       formula escaping, Excel's escapes, lone surrogates, TypedCell
columns     the text column (by name and content), columns found by name, unique names
formats     the suffixes rs reads and writes
files       atomic writes, permissions, file digests
streaming   chunk size and the one-chunk-ahead prefetch
processed   `rs preprocess` outputs, their summaries and the pointer to the latest
"""

from review_sentiment.io.cells import TypedCell, escape_formula, unescape_formula
from review_sentiment.io.columns import (
    SAMPLE_ROWS,
    TEXT_COLUMN_NAMES,
    TextColumnChoice,
    choose_text_column,
    find_named_column,
    find_text_column,
    unique_column_name,
)
from review_sentiment.io.files import AtomicPath, file_digest, make_shareable, same_file, write_bytes_atomically
from review_sentiment.io.formats import SUPPORTED_SUFFIXES, WRITE_SUFFIXES, table_stem
from review_sentiment.io.processed import (
    FLAG_COLUMNS,
    LATEST_POINTER,
    NORMALIZED_COLUMN,
    PROCESSED_DIR,
    SIDECAR_SUFFIX,
    latest_processed_file,
    open_reviews,
    read_reviews,
    read_sidecar,
    sidecar_path,
    written_escaped,
)
from review_sentiment.io.reading import TableSource, read_table
from review_sentiment.io.streaming import DEFAULT_CHUNK_ROWS, prefetched
from review_sentiment.io.writing import TableWriter, check_output_path, output_changes, write_table

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FLAG_COLUMNS",
    "LATEST_POINTER",
    "NORMALIZED_COLUMN",
    "PROCESSED_DIR",
    "SAMPLE_ROWS",
    "SIDECAR_SUFFIX",
    "SUPPORTED_SUFFIXES",
    "TEXT_COLUMN_NAMES",
    "WRITE_SUFFIXES",
    "AtomicPath",
    "TableSource",
    "TableWriter",
    "TextColumnChoice",
    "TypedCell",
    "check_output_path",
    "choose_text_column",
    "escape_formula",
    "file_digest",
    "find_named_column",
    "find_text_column",
    "latest_processed_file",
    "make_shareable",
    "open_reviews",
    "output_changes",
    "prefetched",
    "read_reviews",
    "read_sidecar",
    "read_table",
    "same_file",
    "sidecar_path",
    "table_stem",
    "unescape_formula",
    "unique_column_name",
    "write_bytes_atomically",
    "write_table",
    "written_escaped",
]
