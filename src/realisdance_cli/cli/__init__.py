"""`rdance`: the command line. One module per command group, each command a thin function: parse,
call the library, show. The root takes --version, -v/--verbose and -q/--quiet.

Heavy libraries (torch, onnxruntime, pyrender, PyAV) are imported inside the commands, so
`rdance --help` stays instant.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import sys
import warnings
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from realisdance_cli import __version__
from realisdance_cli.cli import (
    animate,
    dataset,
    demo,
    doctor,
    evaluate,
    poses,
    retarget,
    track,
    train,
    weights,
)
from realisdance_cli.cli.shared import Stopped, Terminated, console, errors
from realisdance_cli.errors import UserError

app = typer.Typer(
    name="rdance",
    help="RealisDance: animate a character picture with the poses of a dance video, with realistic hands.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for commands in (demo.app, doctor.app, poses.app, retarget.app, animate.app, train.app):
    app.add_typer(commands)
app.add_typer(weights.app, name="weights")
app.add_typer(dataset.app, name="dataset")
app.add_typer(track.app, name="track")
app.add_typer(evaluate.app, name="eval")

log = logging.getLogger(__name__)


def _show_version(asked: bool) -> None:
    if asked:
        console.print(f"rdance {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            show_default=False,
            help="Say more (-vv: debugging details too).",
        ),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Errors only: no warnings, no progress bars.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Log through Python's `logging` to stderr at the level that -v/-q ask for (default: warnings)."""
    if quiet and verbose:
        raise UserError("give -q (errors only) or -v (say more), not both.")
    _set_up_logging(verbose, quiet)
    log.debug(
        "rdance %s, Python %s on %s; %s",
        __version__,
        platform.python_version(),
        platform.platform(),
        sys.argv,
    )


_OWN_LEVEL_VARIABLES = {
    "huggingface_hub": "HF_HUB_VERBOSITY",
    "transformers": "TRANSFORMERS_VERBOSITY",
    "diffusers": "DIFFUSERS_VERBOSITY",
}
"""Libraries that set their logger's level when imported (after this set-up): from these."""


def _set_up_logging(verbose: int, quiet: bool) -> None:
    """Our messages at the level -v/-q ask for; every library's at warnings (errors with -q) even
    with -vv, which is for debugging rdance, not for PIL's PNG chunks or urllib3's connections."""
    libraries = logging.ERROR if quiet else logging.WARNING
    logging.getLogger().setLevel(libraries)
    logging.getLogger("realisdance_cli").setLevel({0: libraries, 1: logging.INFO}.get(verbose, logging.DEBUG))
    for library, variable in _OWN_LEVEL_VARIABLES.items():
        os.environ[variable] = logging.getLevelName(libraries).lower()
        logging.getLogger(library).setLevel(libraries)  # one imported already
    root = logging.getLogger()
    if not any(handler.get_name() == _HANDLER for handler in root.handlers):  # once per process
        root.addHandler(_log_handler())


_HANDLER = "rdance"


def _log_handler() -> logging.Handler:
    """Rich's columns on a terminal; in a log (a pipe, CI) one line a message, whole for grep and
    copying."""
    handler: logging.Handler
    if errors.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=errors, show_time=False)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.set_name(_HANDLER)
    handler.addFilter(_not_shown_already)
    return handler


def _not_shown_already(record: logging.LogRecord) -> bool:
    """False for a message that a handler of its library has printed (huggingface_hub's, always;
    transformers' on CI): printed twice otherwise."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None and logger.parent is not None:  # up to the root, whose handler is ours
        if logger.handlers:
            return False
        logger = logger.parent if logger.propagate else None
    return True


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    """Library warnings (`warnings.warn`: something the user should know) as one yellow line."""
    if logging.getLogger().isEnabledFor(logging.WARNING):
        errors.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False)


# click's usage error (an unknown option, a bad value), which newer typers vendor: the base of
# typer's public BadParameter either way.
_UsageError: Any = typer.BadParameter.__bases__[0]


_ROOT_FLAGS = ("-v", "--verbose", "-q", "--quiet")


def _usage_mistake(err: Any) -> UserError:
    """click's usage error as one sentence; -v or -q after a command (which only the root takes)
    says where it goes."""
    if getattr(err, "option_name", None) in _ROOT_FLAGS and err.ctx is not None:
        program, *words = err.ctx.command_path.split()
        return UserError(
            f"{err.option_name} goes before the command: `{program} {err.option_name} {' '.join(words)} ...`."
        )
    where = f"; see `{err.ctx.command_path} --help`" if err.ctx is not None else ""
    return UserError(f"{err.format_message().rstrip('.')}{where}.")


def _fail(err: UserError) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
    sys.exit(err.exit_code)


def _terminate(signum: int, frame: object) -> NoReturn:
    raise Terminated


def _flags_take_no_value(command: Any) -> None:
    """Flags (--face, -v, --help) show no value in --help: typer shows `<bool>`, and `--face true`
    fails. The help option is made when asked for, so it is caught then."""
    for param in command.params:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
    help_option = command.get_help_option

    def plain_help_option(ctx: Any) -> Any:
        option = help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = plain_help_option
    for subcommand in getattr(command, "commands", {}).values():
        _flags_take_no_value(subcommand)


def main() -> None:
    """Entry point: user mistakes (and a full disk or a read-only folder) become one red sentence
    and exit code 2, never a traceback; warnings one yellow line."""
    from realisdance_cli.devices import out_of_memory
    from realisdance_cli.files import write_failure

    warnings.showwarning = _show_warning
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # `entry.run` made it quiet while loading
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    command = typer.main.get_command(app)
    _flags_take_no_value(command)
    try:
        sys.exit(
            command.main(prog_name="rdance", standalone_mode=False) or 0
        )  # click's mistakes reach us, not its error box
    except _UsageError as err:  # an unknown option, a value of the wrong type, ...
        if type(err).__name__ == "NoArgsIsHelpError":  # a group given nothing: its help
            err.show()
            sys.exit(err.exit_code)
        _fail(_usage_mistake(err))
    except typer.Abort:  # Ctrl-C at a question
        errors.print("[yellow]interrupted[/]; nothing was written.")
        sys.exit(130)
    except UserError as err:
        _fail(err)
    except OSError as err:
        problem = write_failure(err)
        if problem is None:
            raise
        _fail(problem)
    except (RuntimeError, MemoryError) as err:  # torch's out-of-memory errors are RuntimeErrors
        memory = out_of_memory(err)
        if memory is None:
            raise
        _fail(memory)
    except Stopped as stop:
        errors.print(f"[yellow]interrupted[/]; {stop.said}")
        sys.exit(stop.code)
    finally:  # the work is over: a signal while Python shuts down would only print a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
