"""Old-style import path of :mod:`effplan.bench.slurm` (``from effplan.slurm import SlurmOptions``,
as ``effplan.fleet`` is for Ray).

``import effplan.slurm`` gives the very module :mod:`effplan.bench.slurm`. New code imports
effplan.bench.slurm.
"""

import sys

from .bench import slurm as _home

sys.modules[__name__] = _home
