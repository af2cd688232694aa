"""The one exception type that means "the user can fix this", and how its messages show values."""

import reprlib


class UserError(Exception):
    """A mistake in the input (path, file, option): the CLI shows the message as one sentence,
    exits with code 2 and prints no traceback. (Not a ValueError: Click turns those raised by
    option parsers into usage panels.)"""

    exit_code = 2


class InUse(UserError):
    """Another living process holds what this one would write (a lock, a claimed output): a state
    that passes, not a mistake in the input, so a batch of many items (`rdance dataset build`)
    must not count the item as failed and leave it out as it does a broken one."""


class _Brief(reprlib.Repr):
    """`repr` kept short, for values of a file shown in a message: a few items of two levels
    (YAML aliases can nest a few hundred bytes into billions of items), long numbers cut."""

    def __init__(self) -> None:
        super().__init__()  # Python 3.11's takes no settings
        self.maxlevel, self.maxlist, self.maxdict = 2, 4, 4
        self.maxstring, self.maxother, self.maxlong = 40, 40, 24

    def repr_int(self, x: int, level: int) -> str:
        try:
            return super().repr_int(x, level)
        except ValueError:  # more digits than Python turns into text
            return "<a number of thousands of digits>"


def counted(count: int, noun: str) -> str:
    """'1 frame', '2 frames': a count in a message that can be 1 (a one-frame video is common)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def brief(value: object) -> str:
    """A short `repr` of `value`, whatever its size or depth."""
    return _Brief().repr(value)
