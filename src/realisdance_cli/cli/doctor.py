"""`rdance doctor`: the environment checks as a table."""

from __future__ import annotations

import typer
from rich.markup import escape

from realisdance_cli.cli.shared import WeightsOption, command, console, errors

app = typer.Typer()

_LEVEL_STYLE = {
    "ok": "[green]ok[/]",
    "info": "[dim]--[/]",
    "missing": "[yellow]missing[/]",
    "warn": "[bold yellow]WARN[/]",
    "fail": "[bold red]FAIL[/]",
}


@command(app, "doctor", "rdance doctor", "rdance doctor --weights /data/rdance-weights")
def doctor(weights_dir: WeightsOption = None) -> None:
    """Check this machine: Python, torch/CUDA, ONNX Runtime, headless GL, video codecs, weights."""
    from rich.table import Table

    from realisdance_cli import doctor as checks
    from realisdance_cli.weights import weights_root

    root = weights_root(weights_dir)
    results = checks.run_all(root)
    table = Table(show_header=True, header_style="bold", expand=True)
    table.add_column("area", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in results:
        table.add_row(check.section, check.name, _LEVEL_STYLE[check.level], escape(check.detail))
    console.print(table)
    summary = checks.missing_summary(results, root)
    if summary:
        errors.print(f"[yellow]{escape(summary)}[/]")
    failed = [c for c in results if c.level == "fail"]
    warned = [c for c in results if c.level == "warn"]
    for check in warned:
        errors.print(f"[bold yellow]warning:[/] {check.name}: {escape(check.detail)}")
    if failed:
        errors.print(f"[bold red]{len(failed)} check(s) failed[/]: " + ", ".join(c.name for c in failed))
        raise typer.Exit(1)
