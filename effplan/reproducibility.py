"""Old import path of :mod:`effplan.bench.reproducibility` (kept so that existing imports keep working).

``import effplan.reproducibility`` gives the very module :mod:`effplan.bench.reproducibility`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.bench.reproducibility.
"""

import sys

from .bench import reproducibility as _home

sys.modules[__name__] = _home
