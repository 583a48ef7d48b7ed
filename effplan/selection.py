"""Old import path of :mod:`effplan.planning.selection` (kept so that existing imports keep working).

``import effplan.selection`` gives the very module :mod:`effplan.planning.selection`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.planning.selection.
"""

import sys

from .planning import selection as _home

sys.modules[__name__] = _home
