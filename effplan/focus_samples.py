"""Old import path of :mod:`effplan.planning.focus_samples` (kept so that existing imports keep working).

``import effplan.focus_samples`` gives the very module :mod:`effplan.planning.focus_samples`: the same functions, classes and
module globals (a monkeypatch of either name patches both). New code imports effplan.planning.focus_samples.
"""

import sys

from .planning import focus_samples as _home

if __name__ == "__main__":  # python -m effplan.focus_samples (the README's command)
    raise SystemExit(_home.main())
sys.modules[__name__] = _home
