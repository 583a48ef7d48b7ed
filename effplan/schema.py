"""Old import path of :mod:`effplan.records.schema` (kept so that existing imports keep working).

``import effplan.schema`` gives the very module :mod:`effplan.records.schema`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.records.schema.
"""

import sys

from .records import schema as _home

sys.modules[__name__] = _home
