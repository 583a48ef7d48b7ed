"""Old import path of :mod:`effplan.models.decoders` (kept so that existing imports keep working).

``import effplan.decoders`` gives the very module :mod:`effplan.models.decoders`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.models.decoders.
"""

import sys

from .models import decoders as _home

sys.modules[__name__] = _home
