"""Errors a user can cause, as opposed to bugs.

The CLI turns a `UserError` into one line on stderr and a non-zero exit code; any
other exception inside a run becomes a failed record, and anywhere else is a bug.
"""


class UserError(Exception):
    """A problem with the user's input or environment: one clear line, exit code 2."""


class DataUnavailable(UserError):
    """A task's data is neither on disk nor downloadable (e.g. offline machine).

    Inside a suite the run is recorded as skipped with this message; for a task
    named explicitly with ``--tasks`` it is an error.
    """


class NonFiniteError(RuntimeError):
    """Training produced NaN or inf; the run is recorded as failed."""
