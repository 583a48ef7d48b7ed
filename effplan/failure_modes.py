"""Old import path of :mod:`effplan.refdata.failure_modes` (kept so that existing imports keep working).

``import effplan.failure_modes`` gives the very module :mod:`effplan.refdata.failure_modes`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.refdata.failure_modes.
"""

import sys

from .refdata import failure_modes as _home

sys.modules[__name__] = _home
