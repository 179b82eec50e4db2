"""How an experiment runs: torch threads for its duration, wall-clock stages, a progress bar over its arms."""

from __future__ import annotations

import contextlib
import time


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Use ``n`` torch CPU threads inside the block (None: leave as is), restoring the old count after."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Timer:
    """Wall-clock stages of an experiment, for its summary."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.stages: dict[str, float] = {}
        self._last = self.t0

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round(self.stages.get(stage, 0.0) + now - self._last, 3)
        self._last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.t0, 3)


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar over ``total`` arms (rate and ETA shown), hidden when not ``enabled``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="arm", disable=not enabled, dynamic_ncols=True)
