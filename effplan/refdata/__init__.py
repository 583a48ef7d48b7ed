"""Sourced reference data shipped in ``effplan/data/*.csv``: the hardware catalog
(:mod:`~effplan.refdata.catalog`) and the published reference tables
(:mod:`~effplan.refdata.reference`). numpy / pandas only; every figure carries its source and date.
"""
