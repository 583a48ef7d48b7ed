"""Old import path of :mod:`effplan.models.candidates` (kept so that existing imports keep working).

``import effplan.candidates`` gives the very module :mod:`effplan.models.candidates`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.models.candidates.
"""

import sys

from .models import candidates as _home

sys.modules[__name__] = _home
