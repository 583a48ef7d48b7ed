"""Old import path of :mod:`effplan.views.figures` (kept so that existing imports keep working).

``import effplan.plots`` gives the very module :mod:`effplan.views.figures`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.views.figures.
"""

import sys

from .views import figures as _home

sys.modules[__name__] = _home
