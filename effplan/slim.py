"""Old import path of :mod:`effplan.models.slimming` (kept so that existing imports keep working).

``import effplan.slim`` gives the very module :mod:`effplan.models.slimming`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.models.slimming.
"""

import sys

from .models import slimming as _home

sys.modules[__name__] = _home
