"""The only users of ipywidgets / IPython: the budget dashboard (:mod:`~effplan.ui.dashboard`) and the
helpers the notebooks call (:mod:`~effplan.ui.notebook`).
"""
