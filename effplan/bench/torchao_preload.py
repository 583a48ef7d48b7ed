"""Imported by the measurement workers' fork server when torchao is in use (effplan.worker):
torchao is imported there once, its GPU-only kernel messages captured as
:func:`effplan.slim.torchao_status` does, so that each worker forked from the server has it
already instead of spending seconds importing it per measured point."""

from ..models.slimming import torchao_status

torchao_status()
