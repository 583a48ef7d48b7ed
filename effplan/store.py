"""Old import path of :mod:`effplan.records.store` (kept so that existing imports keep working).

``import effplan.store`` gives the very module :mod:`effplan.records.store`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.records.store.
"""

import sys

from .records import store as _home

sys.modules[__name__] = _home
