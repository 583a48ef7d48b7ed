"""Old import path of :mod:`effplan.views.actuals` (kept so that existing imports keep working).

``import effplan.actuals_view`` gives the very module :mod:`effplan.views.actuals`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.views.actuals.
"""

import sys

from .views import actuals as _home

sys.modules[__name__] = _home
