"""Old import path of :mod:`effplan.models.generative` (kept so that existing imports keep working).

``import effplan.generation`` gives the very module :mod:`effplan.models.generative`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.models.generative.
"""

import sys

from .models import generative as _home

sys.modules[__name__] = _home
