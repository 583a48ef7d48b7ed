"""Old import path of :mod:`effplan.refdata.reference` (kept so that existing imports keep working).

``import effplan.reference`` gives the very module :mod:`effplan.refdata.reference`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.refdata.reference.
"""

import sys

from .refdata import reference as _home

sys.modules[__name__] = _home
