"""Streaming a file in chunks: the chunk size, and working on the next chunk while this one is used."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

DEFAULT_CHUNK_ROWS = 10_000  # rows read, processed and written at a time by predict and preprocess


def prefetched(items: Iterable, work: Callable) -> Iterator:
    """(item, work(item)) for each item, in order, with the next item read and worked on in a background thread
    meanwhile. kiwipiepy, the tokenizer and torch release the GIL, so the next chunk is normalized and tokenized
    while the model scores this one (on a GPU the model then never waits for the CPU)."""
    from concurrent.futures import ThreadPoolExecutor

    iterator = iter(items)
    done = object()

    def next_result():
        item = next(iterator, done)
        return done if item is done else (item, work(item))

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rs-prefetch")
    try:
        future = pool.submit(next_result)
        while (result := future.result()) is not done:
            future = pool.submit(next_result)
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
