"""Old import path of :mod:`effplan.devices.hardware` (kept so that existing imports keep working).

``import effplan.hardware`` gives the very module :mod:`effplan.devices.hardware`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.devices.hardware.
"""

import sys

from .devices import hardware as _home

sys.modules[__name__] = _home
