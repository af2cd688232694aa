"""The one exception type that means "the user can fix this"."""


class UserError(Exception):
    """A mistake in the input (path, file, option): the CLI shows the message as one sentence,
    exits with code 2 and prints no traceback."""

    exit_code = 2
