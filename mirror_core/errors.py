"""Typed errors. Each carries a sentence a user can act on; the CLI and pages show it as is."""


class MirrorError(Exception):
    """Base class for every error the library raises on purpose."""


class ConfigError(MirrorError):
    """The project home, database URL or a setting is wrong."""


class ImportError_(MirrorError):
    """A data import failed; nothing was written. Names the file, row and column where known."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        where = []
        if file:
            where.append(f"file {file}")
        if row is not None:
            where.append(f"row {row}")
        if column:
            where.append(f"column '{column}'")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
        self.file, self.row, self.column = file, row, column


# Public alias with a clearer name; ImportError_ avoids shadowing the builtin inside this module.
DataImportError = ImportError_


class NotFoundError(MirrorError):
    """A dataset, snapshot, run or other named object does not exist."""


class AnswerParseError(MirrorError):
    """A gold answer or model output cannot be read as the task type requires."""


class TeacherError(MirrorError):
    """A teacher could not be built or called (missing key, bad spec, unreachable server)."""


class MissingKeyError(TeacherError):
    """An API key is missing; the message names the environment variable to set."""


class BudgetExceeded(MirrorError):
    """The run's cost cap was reached; the run stopped cleanly and can be resumed with a higher cap."""


class JobError(MirrorError):
    """A background job could not be started, stopped or resumed."""


class ConflictError(MirrorError):
    """Someone else saved this object first; reload to see their change, then edit again."""


class TrainingError(MirrorError):
    """Training could not start or continue (bad snapshot, student spec or checkpoint)."""


class SnapshotError(MirrorError):
    """A snapshot cannot be created or read as asked (name taken, unknown policy, nothing to freeze)."""


class FilterError(MirrorError):
    """A review filter value is not one the Review page knows (e.g. from a hand-edited URL)."""


class EvaluationError(MirrorError):
    """A run cannot be evaluated or compared (no checkpoint, no examples in the split, unfinished run)."""


class CurationError(MirrorError):
    """A review edit or status change is not allowed as asked (e.g. an empty CoT)."""


class LoopError(MirrorError):
    """A feedback loop (ELAD, MAPD, critic) cannot run with the given settings or data."""


class IncompleteRunError(MirrorError):
    """A job finished its work but some of it failed (e.g. teacher requests); resuming it retries those."""
