"""effplan's own exceptions and warnings.

Vendor errors (``pynvml.NVMLError``, CUDA out-of-memory, fvcore/jit tracing errors) are translated
into these at one boundary each, with a message that says what to do.
"""

from __future__ import annotations


class EffplanError(Exception):
    """Base class of every error effplan raises on purpose."""


class ValidationError(EffplanError, ValueError):
    """Bad input at a boundary (workload, prices, catalog, stored results, measurement frame).

    ``field`` names the offending field/column; ``where`` (optional) names the file, row or line.
    The message always contains the field name so that a user can fix it without reading code.
    """

    def __init__(self, field: str, message: str, *, where: str | None = None) -> None:
        self.field = field
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{field}: {message}")


class FlopCountError(EffplanError):
    """Neither fvcore nor the dispatch-level counter could count the model."""


class MeasurementError(EffplanError):
    """A measurement could not be taken (recorded on the row; raised only when asked to)."""


class InfeasibleRecipeError(EffplanError):
    """A slim recipe cannot run on this device or does not apply to this model
    (:mod:`effplan.slim`); the message says why. Building such a variant raises it, so a
    measured point of it is an error row with the reason."""


class EnergyBackendError(EffplanError):
    """An energy backend failed (NVML missing or failing, RAPL unreadable)."""


class EffplanWarning(UserWarning):
    """Base class of effplan's warnings: a degraded result, with how to fix it."""


class UnsupportedOperatorWarning(EffplanWarning):
    """Some operators were neither counted nor known to be FLOP-free."""


class EnergyFallbackWarning(EffplanWarning):
    """The preferred energy backend is unavailable; a lower-fidelity one is used."""


class CatalogFallbackWarning(EffplanWarning):
    """A catalog figure is an estimate (generic per-core figures, or no detection available)."""


class PlanWarning(EffplanWarning):
    """A plan figure is degraded (e.g. a missing price gives NaN cost); the message says how to fix it."""


class UnknownHardwareError(ValidationError):
    """A hardware name or price key matches no catalog name or alias (exactly, ignoring case).

    ``suggestions`` holds the closest catalog names (``difflib``), also shown in the message.
    """

    def __init__(self, field: str, message: str, *, where: str | None = None,
                 suggestions: tuple[str, ...] = ()) -> None:
        self.suggestions = tuple(suggestions)
        super().__init__(field, message, where=where)


class SkippedRecordsError(EffplanError):
    """Records were skipped while loading results and the caller asked for strict loading."""


class SlimWarning(EffplanWarning):
    """A slim recipe degraded (torchao missing, a legacy fallback used); the message says how to fix it."""


class DataWarning(EffplanWarning):
    """Input data is accepted but suspicious (e.g. idle power above busy power); rows are named."""


class CurrencyError(ValidationError):
    """A bill holds money in a currency other than US dollars and no exchange rate was given for
    it (``fx={"EUR": <US dollars per euro>}``): effplan plans in USD and never guesses a rate."""


class ExtrapolationError(ValidationError):
    """A prediction was asked for too far beyond the data it was fitted on (a learning curve
    beyond 16x its largest measured size). ``ratio`` is how far (n / largest size)."""

    def __init__(self, field: str, message: str, *, where: str | None = None, ratio: float = float("nan")) -> None:
        self.ratio = float(ratio)
        super().__init__(field, message, where=where)
