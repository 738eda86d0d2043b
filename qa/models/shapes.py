"""The input shapes a server's models see, kept to a small fixed set.

Every new (batch, width) shape leaves memory behind: oneDNN keeps compiled kernels per shape (its primitive cache
holds 1,024) and the allocator keeps buffers of the sizes it was asked for. Over 144 shapes of the span reader in
bf16 (12 widths x batches of 1-12), resident memory rose by 250 MB under jemalloc and by 470 MB under glibc's
malloc, and stayed there; a shape seen before costs nothing (benchmarks/shape_memory.py). Widths are fixed
(multiples of 32 for the reader, of 16 for questions), and batches are cut into power-of-two sizes here, so that a
model sees at most ``len(widths) x (log2(cap) + 1)`` shapes, all of which a server runs once at start-up
(``SpanReader.warm_up_shapes``).

On a CPU every input runs alone (batch size 1), so the reader has 12 shapes, one per width. Batch mates changed
results: the math libraries pick their kernels by the number of rows, and on an Intel Xeon with AMX (2026-12-02)
the same window read alone and beside others differed in its last bits, in bf16 and in fp32 alike
(tests/test_serving.py failed both ways), which can change an answer; on the AVX2 CPU of 2026-11-29 fp32 had been
bitwise invariant. Reading alone costs 7-16% of one user's reading time on a 2-core AMX CPU
(benchmarks/reading_batch.py) and keeps an answer the same whoever else is asking.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def power_of_two_sizes(cap: int) -> list[int]:
    """The batch sizes used: 1, 2, 4, ... up to the largest power of two <= ``cap``."""
    sizes = [1]
    while sizes[-1] * 2 <= cap:
        sizes.append(sizes[-1] * 2)
    return sizes


def power_of_two_batches(items: Sequence[T], cap: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive batches whose sizes are powers of two, each at most ``cap``, largest first
    (13 items, cap 16 -> 8, 4, 1)."""
    sizes = power_of_two_sizes(max(1, cap))
    i = 0
    while i < len(items):
        size = next(s for s in reversed(sizes) if s <= len(items) - i)
        yield items[i : i + size]
        i += size


def invariant_batch_cap(cap: int, device: str = "cpu") -> int:
    """The largest batch whose results do not depend on batch mates: 1 on a CPU (see above), ``cap`` on a GPU
    (reading window by window there would waste the device; whether its kernels are batch-invariant is not
    measured)."""
    return cap if device != "cpu" else 1
