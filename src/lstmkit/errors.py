"""The one exception type for user mistakes.

Anything a user can get wrong (a bad file, a missing column, a series too short,
an option out of range) raises :class:`LstmkitError` with a message that says
what is wrong and how to fix it. The CLI prints the message without a traceback
and exits with status 2; bugs stay ordinary exceptions with tracebacks.
"""


class LstmkitError(ValueError):
    """A user error: the message says what is wrong and how to fix it."""


class RunInterrupted(LstmkitError):
    """Ctrl-C during a run: what was trained is kept, and the message says how to resume."""


def option_name(field: str) -> str:
    """The command-line option of a config field: ``hidden_size`` -> ``--hidden-size``
    (the CLI spells every config field this way; messages name the option)."""
    return "--" + field.replace("_", "-")
