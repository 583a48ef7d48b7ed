"""Old import path of :mod:`effplan.models.examples` (kept so that existing imports keep working).

``import effplan.examples`` gives the very module :mod:`effplan.models.examples`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.models.examples.
"""

import sys

from .models import examples as _home

sys.modules[__name__] = _home
