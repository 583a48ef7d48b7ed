"""Old import path of :mod:`effplan.planning.batching` (kept so that existing imports keep working).

``import effplan.batching`` gives the very module :mod:`effplan.planning.batching`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.planning.batching.
"""

import sys

from .planning import batching as _home

sys.modules[__name__] = _home
