"""`rdance`'s entry point: Ctrl-C while the command line's modules load (before anything has been
done) ends quietly with exit code 130, not with a traceback from inside an import."""

import os
import signal


def _quietly(signum: int, frame: object) -> None:
    os._exit(130)


def run() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # ignored: a background job's, kept so
        signal.signal(signal.SIGINT, _quietly)
    from realisdance_cli.cli import main

    main()
