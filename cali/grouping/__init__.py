"""Streaming log template mining: masking of variables, online grouping, consolidation with aliases."""

from cali.grouping.masking import mask
from cali.grouping.miner import Match, MinerConfig, TemplateMiner

__all__ = ["Match", "MinerConfig", "TemplateMiner", "mask"]
