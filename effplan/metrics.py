"""Old import path of :mod:`effplan.records.metrics` (kept so that existing imports keep working).

``import effplan.metrics`` gives the very module :mod:`effplan.records.metrics`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.records.metrics.
"""

import sys

from .records import metrics as _home

sys.modules[__name__] = _home
