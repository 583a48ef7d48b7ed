"""Measuring: timing, worker processes, the probes both point kinds share, the points, the
sweep, the Ray fleet, and quality evaluation. torch is imported when a measurement runs, never at
import; :func:`effplan.measure` (:mod:`effplan.measurement`) is the front door.
"""
