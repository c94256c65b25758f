"""User-facing errors: raised for bad input, reported by the CLI as one line with exit code 2."""


class UserError(Exception):
    """A mistake in what the user asked for (bad path, bad option, bad file).

    The CLI prints ``bytelm: error: <message>`` on stderr and exits with status 2; library
    callers can catch it like any exception.
    """
