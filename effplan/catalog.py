"""Old import path of :mod:`effplan.refdata.catalog` (kept so that existing imports keep working).

``import effplan.catalog`` gives the very module :mod:`effplan.refdata.catalog`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.refdata.catalog.
"""

import sys

from .refdata import catalog as _home

sys.modules[__name__] = _home
