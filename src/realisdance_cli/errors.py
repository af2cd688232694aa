"""The one exception type that means "the user can fix this"."""


class UserError(Exception):
    """A mistake in the input (path, file, option): the CLI shows the message as one sentence,
    exits with code 2 and prints no traceback. (Not a ValueError: Click turns those raised by
    option parsers into usage panels.)"""

    exit_code = 2
