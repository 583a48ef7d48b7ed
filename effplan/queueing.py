"""Old import path of :mod:`effplan.planning.queueing` (kept so that existing imports keep working).

``import effplan.queueing`` gives the very module :mod:`effplan.planning.queueing`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.planning.queueing.
"""

import sys

from .planning import queueing as _home

sys.modules[__name__] = _home
