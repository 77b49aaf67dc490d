"""Streaming log template mining: masking of variables, online grouping, persistent group ids."""

from cali.grouping.masking import MASKS, mask
from cali.grouping.miner import Match, MinerConfig, TemplateMiner

__all__ = ["MASKS", "Match", "MinerConfig", "TemplateMiner", "mask"]
