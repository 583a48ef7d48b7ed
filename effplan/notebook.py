"""Old import path of :mod:`effplan.ui.notebook` (kept so that existing imports keep working).

``import effplan.notebook`` gives the very module :mod:`effplan.ui.notebook`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.ui.notebook.
"""

import sys

from .ui import notebook as _home

sys.modules[__name__] = _home
