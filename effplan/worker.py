"""Old import path of :mod:`effplan.bench.worker` (kept so that existing imports keep working).

``import effplan.worker`` gives the very module :mod:`effplan.bench.worker`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.bench.worker.
"""

import sys

from .bench import worker as _home

sys.modules[__name__] = _home
