"""Stage-by-stage progress on stderr with elapsed time (silent with ``quiet``)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from rich.console import Console

from imx500_sam.procs import STOP_EXCEPTIONS, activity, pause_point


class StageProgress:
    """Prints ``[i/n] stage ...`` with a live spinner and elapsed time, then the stage's duration."""

    def __init__(self, total: int | None = None, quiet: bool = False) -> None:
        self.total = total
        self.quiet = quiet
        self.index = 0
        self.timings: dict[str, float] = {}
        self.console = Console(file=sys.stderr, highlight=False)

    @contextlib.contextmanager
    def stage(self, name: str, key: str | None = None) -> Iterator[None]:
        """Time a stage; its duration is stored under ``key`` (default ``name``)."""
        self.index += 1
        prefix = f"[{self.index}/{self.total}]" if self.total else f"[{self.index}]"
        start = time.perf_counter()
        try:
            shown: contextlib.AbstractContextManager = contextlib.nullcontext()
            if not self.quiet and self.console.is_terminal:
                shown = self.console.status(f"{prefix} {name} ...")
            elif not self.quiet:
                self.console.print(f"{prefix} {name} ...")
            with activity(f"{prefix} {name}"), shown:
                pause_point(key or name)  # a test hook (IMX500_SAM_PAUSE_AT); inert otherwise
                yield
        except STOP_EXCEPTIONS:
            raise  # the CLI prints one line naming this stage
        except BaseException:
            if not self.quiet:
                self.console.print(f"{prefix} {name} [red]failed[/red] after {time.perf_counter() - start:.1f} s")
            raise
        elapsed = time.perf_counter() - start
        self.timings[key or name] = elapsed
        if not self.quiet:
            self.console.print(f"{prefix} {name} [green]done[/green] in {elapsed:.1f} s")

    def info(self, text: str) -> None:
        """A line of information (suppressed when quiet)."""
        if not self.quiet:
            self.console.print(text, soft_wrap=True)  # paths stay whole on one line


@contextlib.contextmanager
def item_bar(total: int, description: str, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """A progress bar over ``total`` items on an interactive stderr (nothing otherwise); yields ``advance()``."""
    console = Console(file=sys.stderr)
    if not enabled or not console.is_terminal:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
