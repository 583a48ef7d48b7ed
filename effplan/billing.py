"""Old import path of :mod:`effplan.records.billing` (kept so that existing imports keep working).

``import effplan.billing`` gives the very module :mod:`effplan.records.billing`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.records.billing.
"""

import sys

from .records import billing as _home

sys.modules[__name__] = _home
