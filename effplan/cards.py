"""Old import path of :mod:`effplan.views.cards` (kept so that existing imports keep working).

``import effplan.cards`` gives the very module :mod:`effplan.views.cards`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.views.cards.
"""

import sys

from .views import cards as _home

sys.modules[__name__] = _home
