"""Static presentation, no widgets and no torch: matplotlib figures (:mod:`~effplan.views.figures`,
:mod:`~effplan.views.learning`), compute cards (:mod:`~effplan.views.cards`) and the budget-vs-actuals
views (:mod:`~effplan.views.actuals`). Numbers are written by :mod:`effplan.formatting`.
"""
