"""Unit constants, the one home of each conversion factor (no imports, no torch).

Every formula that turns seconds into days, joules into kWh, grams into kilograms, bytes into
MiB or forward FLOPs into training FLOPs reads its factor here, so that each number is written
once.
"""

from __future__ import annotations

__all__ = ["S_PER_HOUR", "S_PER_DAY", "J_PER_KWH", "J_PER_WH", "G_PER_KG", "BYTES_PER_MIB", "KIB_PER_MIB",
           "MS_PER_S", "TRAINING_FLOPS_PER_FORWARD"]

#: seconds in an hour
S_PER_HOUR: float = 3600.0
#: seconds in a day
S_PER_DAY: float = 86_400.0
#: joules in a kilowatt-hour (3.6 MJ)
J_PER_KWH: float = 3.6e6
#: joules in a watt-hour
J_PER_WH: float = 3600.0
#: grams in a kilogram (CO2 figures: gCO2 per kWh x kWh / 1000 = kg)
G_PER_KG: float = 1000.0
#: bytes in a mebibyte (2**20; memory figures are MiB, not decimal MB)
BYTES_PER_MIB: int = 2**20
#: kibibytes in a mebibyte (Linux /proc reports KiB)
KIB_PER_MIB: float = 1024.0
#: milliseconds in a second
MS_PER_S: float = 1e3
#: training FLOPs per item = 3 x the forward FLOPs (forward + backward, the backward ~2x the
#: forward: the usual estimate of Kaplan et al. 2020, "Scaling Laws for Neural Language Models")
TRAINING_FLOPS_PER_FORWARD: float = 3.0
