"""Progress callbacks ``(stage, done, total) -> None`` for long library calls (indexing, evaluation)."""
from __future__ import annotations

import sys
from collections.abc import Callable


def progress_bar() -> Callable[[str, int, int], None]:
    """A progress callback drawing one tqdm bar per stage on stderr."""
    from tqdm.auto import tqdm

    bars: dict[str, object] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="", file=sys.stderr, leave=False,
                                     disable=total < 2 and stage != "embedding")
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update
