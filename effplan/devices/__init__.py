"""The machine a measurement runs on: device names and hardware identity
(:mod:`~effplan.devices.hardware`, the one device rule) and energy meters
(:mod:`~effplan.devices.energy`). torch, psutil and pynvml are imported lazily, never at import.
"""
