"""Old import path of :mod:`effplan.ui.dashboard` (kept so that existing imports keep working).

``import effplan.widgets`` gives the very module :mod:`effplan.ui.dashboard`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.ui.dashboard.
"""

import sys

from .ui import dashboard as _home

sys.modules[__name__] = _home
