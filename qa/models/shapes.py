"""The input shapes a server's models see, kept to a small fixed set.

Every new (batch, width) shape leaves memory behind: oneDNN keeps compiled kernels per shape (its primitive cache
holds 1,024) and the allocator keeps buffers of the sizes it was asked for. Measured over 144 shapes of the span
reader in bf16 (12 widths x batches of 1-12), resident memory rose by 250 MB under jemalloc and by 470 MB under
glibc's malloc, and stayed there; a shape seen before costs nothing. Widths are already fixed (multiples of 32 for
the reader, of 16 for questions), and batches are cut into power-of-two sizes here, so that a model sees at most
``len(widths) x log2(cap)`` shapes, all of which a server can run once at start-up (``SpanReader.warm_up_shapes``).

Which batch sizes keep every result independent of its batch mates depends on the arithmetic. In fp32 a window's
logits are bitwise the same at any batch size (tests/test_serving.py), so windows of one width share forward
passes. In bf16 (and fp16) they are not: oneDNN picks its kernels by the number of rows, and the same window read
alone and beside three others differs in its last bits, which can change an answer. There each input runs alone
(batch size 1), which costs 7-16% of the reading time on a 2-core AMX CPU (measured with the seed questions) and
keeps an answer the same whoever else is asking.
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


def invariant_batch_cap(dtype, cap: int) -> int:
    """The largest batch whose results do not depend on batch mates for a model computing in ``dtype``: ``cap`` in
    fp32, 1 otherwise (see above)."""
    import torch

    return cap if dtype in (None, torch.float32) else 1
