"""Old import path of :mod:`effplan.views.learning` (kept so that existing imports keep working).

``import effplan.learning_plots`` gives the very module :mod:`effplan.views.learning`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.views.learning.
"""

import sys

from .views import learning as _home

sys.modules[__name__] = _home
