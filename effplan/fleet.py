"""Old import path of :mod:`effplan.bench.fleet` (kept so that existing imports keep working).

``import effplan.fleet`` gives the very module :mod:`effplan.bench.fleet`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.bench.fleet.
"""

import sys

from .bench import fleet as _home

sys.modules[__name__] = _home
