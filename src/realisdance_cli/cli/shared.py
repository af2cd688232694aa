"""What the `rdance` commands share: the consoles, progress bars, option types and examples.

Only light modules are imported here (typer, rich's console), so `rdance --help` stays instant.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum, StrEnum
from inspect import getdoc
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from realisdance_cli.devices import MAX_SEED
from realisdance_cli.errors import UserError
from realisdance_cli.progress import ProgressFn, no_progress

# A message, a command or a path stays on one line whatever the width: copied whole from a terminal,
# one line in a log.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or `timeout`'s stop), ended as Ctrl-C is: the same clean-up and
    sentence."""


class Stopped(BaseException):
    """A command ended by Ctrl-C or SIGTERM, with its exit code (128 + the signal's number, as
    shells report a stop) and what to tell the user. Not a KeyboardInterrupt, which typer turns
    into a silent exit 130 before `main` could say anything."""

    def __init__(self, interrupt: KeyboardInterrupt, said: str) -> None:
        super().__init__(said)
        self.code = 143 if isinstance(interrupt, Terminated) else 130
        self.said = said


RESUMES = "finished parts are kept; run the same command again to resume."
RESTARTS = "no output was left half-written."

Choice = TypeVar("Choice", bound=Enum)
Command = TypeVar("Command", bound=Callable[..., Any])

EXAMPLES: dict[str, tuple[str, ...]] = {}
"""Each command's examples, by the words that name it after `rdance` ("weights download"): shown
at the end of its --help, and each one parsed by the tests."""


def command(group: typer.Typer, path: str, *examples: str) -> Callable[[Command], Command]:
    """Register the decorated function as `rdance <path>` on `group` (the last word of `path` is its
    name there); its help is its docstring followed by `examples`. A stop outside the progress
    bars is said too (`Stopped`)."""

    def register(function: Command) -> Command:
        EXAMPLES[path] = examples
        title = "Example" if len(examples) == 1 else "Examples"
        shown = "\n".join(f"  {escape(line)}" for line in examples)
        help = f"{_unwrapped(getdoc(function) or '')}\n\n[bold]{title}[/]:\n{shown}"

        @functools.wraps(function)
        def stoppable(*args: Any, **kwargs: Any) -> Any:
            with interruptible(RESTARTS):
                return function(*args, **kwargs)

        group.command(path.split()[-1], help=help)(stoppable)
        return function

    return register


def _unwrapped(doc: str) -> str:
    """`doc` with each paragraph on one line: Typer's rich help keeps the source's line breaks after
    the first paragraph, which then break mid-sentence at the terminal's width."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in doc.split("\n\n"))


def either(values: Sequence[str]) -> str:
    """'a, b or c'."""
    return " or ".join(filter(None, (", ".join(values[:-1]), values[-1])))


def choice(kind: type[Choice], flag: str, help: str) -> Any:
    """An option that takes one of `kind`'s values: --help lists them, and any other value is
    refused while parsing, before any work, in one sentence with exit code 2 like every other wrong
    option (Typer's own Enum check would say it in a usage panel, worded by pydantic)."""
    values = [str(member.value) for member in kind]

    def parse(value: str) -> Choice:
        try:
            return kind(value)
        except ValueError:
            raise UserError(f"{flag} must be {either(values)}, got {value!r}.") from None

    return typer.Option(flag, parser=parse, metavar=f"<{'|'.join(values)}>", help=help)


_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


def parse_device(value: str) -> str:
    """A device name the networks understand (whether the machine has it is checked when they load)."""
    if not _DEVICE.fullmatch(value):
        raise UserError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {value!r}.")
    return value


def parse_seed(value: str) -> int:
    """A noise seed torch takes: checked here, not after the models have loaded."""
    try:
        seed = int(value)
    except ValueError:
        raise UserError(f"--seed must be a whole number, got {value!r}.") from None
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be 0 to {MAX_SEED}, got {seed}.")
    return seed


def seed_option(help_text: str) -> Any:
    return typer.Option("--seed", parser=parse_seed, metavar="<int>", help=help_text)


class Choices(StrEnum):
    """The words an option takes. A StrEnum, whose `str()` is the word: older typers (0.18, our
    lower bound) pass the parsed value through `str()`, which for a (str, Enum) says
    `Class.member`, and then find no member (the option arrived as None)."""


class Dtype(Choices):
    """Number formats of the PyTorch networks (`devices.DTYPES`)."""

    fp16 = "fp16"
    bf16 = "bf16"
    fp32 = "fp32"


WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="Weights folder (default: $RDANCE_HOME, else ~/.cache/realisdance).",
        show_default=False,
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", "-f", help="Replace the output if it exists.")]
AudioOption = Annotated[
    Path | None,
    typer.Option(
        "--audio", help="Take the sound from this file (default: the source video's, if it has one)."
    ),
]
NoAudioOption = Annotated[bool, typer.Option("--no-audio", help="Write the videos without sound.")]


def audio_choice(audio: Path | None, no_audio: bool) -> Path | Literal[False] | None:
    """--audio FILE, --no-audio, or neither (the default source); both at once is a mistake."""
    if audio is not None and no_audio:
        raise UserError("give --audio FILE or --no-audio, not both.")
    return False if no_audio else audio


DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        parser=parse_device,
        metavar="<auto|cpu|cuda|cuda:N|mps>",
        help="Where the networks run: auto (a GPU when there is one), cpu, cuda, cuda:N or mps.",
    ),
]
DtypeOption = Annotated[
    Dtype | None,
    choice(Dtype, "--dtype", "Number format of the networks (default: fp16 on a GPU, fp32 on the CPU)."),
]


def plain(option: Enum | None) -> Any:
    """The value of a choice option as the library takes it (None stays None)."""
    return None if option is None else option.value


@contextmanager
def interruptible(said: str) -> Iterator[None]:
    """A stop (Ctrl-C, SIGTERM) within ends the command with its exit code and `said` (whether the
    job resumes); the innermost one says it."""
    try:
        yield
    except KeyboardInterrupt as err:
        raise Stopped(err, said) from None


@contextmanager
def progress_bars(on_interrupt: str = RESTARTS) -> Iterator[ProgressFn]:
    """A `ProgressFn` that shows each task: rich bars on a terminal, plain lines in a log (a pipe,
    CI, nohup), nothing when `-q` asked for errors only; Ctrl-C ends the job with exit code 130 and
    `on_interrupt` (whether it resumes)."""
    with interruptible(on_interrupt):
        if not logging.getLogger().isEnabledFor(logging.WARNING):
            yield no_progress
        elif not errors.is_terminal:
            yield progress_lines(lambda line: errors.print(line, markup=False, highlight=False))
        else:
            with _bars() as report:
                yield report


@contextmanager
def _bars() -> Iterator[ProgressFn]:
    """One rich bar per task (frames/s and time left), drawn from the first report on."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:6.1f}/s" if task.speed else "", style="cyan")

    bars = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def report(task: str, completed: int, total: int | None) -> None:
        if not tasks:
            bars.start()  # at the first bar: a job that fails first leaves no empty line
        if task not in tasks:
            tasks[task] = bars.add_task(task, total=total)
        bars.update(tasks[task], completed=completed, total=total)

    try:
        yield report
    finally:  # before the sentence
        if tasks:  # rich ends even a display it never started with an empty line
            bars.stop()


LINE_EVERY_S = 30.0  # a moving task's log line at least this often,
LINE_EVERY_PART = 10  # and whenever it has moved a tenth of its total


@dataclass
class _Said:
    """A task's first report (to measure its rate by) and its last line."""

    started: float
    first: int
    said: int
    at: float


def progress_lines(say: Callable[[str], None]) -> ProgressFn:
    """A `ProgressFn` that says each task in lines such as `render 12/60 (20%), 30.1/s, 0:00:02 left`:
    rich draws bars off a terminal only when they end, so a log would show no life for hours. A
    task's first and last reports are said, and between them one line each tenth of the task or
    each 30 s, whichever comes first, so that a log is not flooded either."""
    tasks: dict[str, _Said] = {}

    def report(task: str, completed: int, total: int | None) -> None:
        now = time.monotonic()
        said = tasks.get(task)
        if said is None:
            said = tasks[task] = _Said(started=now, first=completed, said=completed, at=now)
        elif not _line_due(said, completed, total, now):
            return
        said.said, said.at = completed, now
        elapsed = now - said.started
        rate = (completed - said.first) / elapsed if elapsed > 0 and completed > said.first else None
        say(_progress_line(task, completed, total, rate))

    return report


def _line_due(said: _Said, completed: int, total: int | None, now: float) -> bool:
    """Whether a task has moved enough since its last line to say it again."""
    if completed == said.said:
        return False
    step = total / LINE_EVERY_PART if total else None
    return (
        completed == total
        or now - said.at >= LINE_EVERY_S
        or (step is not None and completed - said.said >= step)
    )


def _progress_line(task: str, completed: int, total: int | None, rate: float | None) -> str:
    """`render 12/60 (20%), 30.1/s, 0:00:02 left`: what is known of it."""
    parts = [f"{task} {completed}/{total} ({100 * completed // total}%)" if total else f"{task} {completed}"]
    if rate:
        parts.append(f"{rate:.1f}/s")
        if total and completed < total:
            parts.append(f"{timedelta(seconds=round((total - completed) / rate))} left")
    return ", ".join(parts)
