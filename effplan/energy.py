"""Old import path of :mod:`effplan.devices.energy` (kept so that existing imports keep working).

``import effplan.energy`` gives the very module :mod:`effplan.devices.energy`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.devices.energy.
"""

import sys

from .devices import energy as _home

sys.modules[__name__] = _home
