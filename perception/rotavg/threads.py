"""Optional single-threaded BLAS for the solver's many small dense operations.

The solver's dense work is batched 3x3 blocks and small eigenproblems; on a shared
2-core machine multi-threaded OpenBLAS spends most of its time spin-waiting (measured:
45x slower on a 60-node problem at load 10). Adapters (CLI, node, benchmark, tests) wrap
solves in :func:`single_threaded_blas`; the library itself never changes global state.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["single_threaded_blas"]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS/OpenMP pools to one thread inside the block (no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional dependency
        yield
        return
    with threadpool_limits(limits=1):
        yield
