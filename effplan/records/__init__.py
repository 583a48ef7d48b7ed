"""The tables effplan reads and writes, and the rules they obey (numpy / pandas only).

The contract between measuring and planning: the measurement schema and its one validator
(:mod:`~effplan.records.schema`), the results store (:mod:`~effplan.records.store`), and the
FOCUS billing exports budget-vs-actuals reads (:mod:`~effplan.records.billing`).
Nothing here imports torch, a device library or another effplan layer above it.
"""
