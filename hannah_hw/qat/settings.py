"""A search's training settings: how each candidate is trained before it is priced. Kept apart
from :class:`~hannah_hw.qat.pipeline.TrainConfig` (which imports torch) so a flow file or
command line can be checked and a study opened without loading torch."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pipeline import TrainConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainSettings:
    dataset: str
    epochs: int
    qat_epochs: int
    wbits: int = 8
    abits: int = 8
    limit: int | None = None  # train on at most this many samples
    kws_clips: int = 20000  # synthesised clips of the kws data set

    def train_config(self, seed: int = 0) -> TrainConfig:
        """The pipeline's configuration for one candidate; the search gives the seed."""
        from .pipeline import TrainConfig

        return TrainConfig(self.dataset, self.epochs, self.qat_epochs, self.wbits, self.abits,
                           seed=seed, limit=self.limit, kws_clips=self.kws_clips)
