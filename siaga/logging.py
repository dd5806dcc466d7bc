"""structlog set-up shared by every process of the stack."""

from __future__ import annotations

import logging
import sys

import structlog


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time: test runners and daemons swap it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


# One list, changed in place by each configure_logging: a logger cached on its first use keeps
# the list it found, so a new list would leave it writing the old way (and out of the reach of
# structlog.testing.capture_logs, which edits the configured list).
_PROCESSORS: list[structlog.typing.Processor] = []


def configure_logging(fmt: str = "console", level: int = logging.INFO) -> None:
    """Console lines for people, JSON lines for machines; ISO timestamps in UTC either way."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    _PROCESSORS[:] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=_PROCESSORS,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library (asyncio's "Task exception was never
    # retrieved", aiohttp's errors): the same renderer, so that a service's journal holds
    # JSON lines only.
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SiagaHandler)]:
        root.removeHandler(old)
    handler = _SiagaHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
        )
    )
    root.addHandler(handler)


class _SiagaHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours among the root logger's handlers: replaced, not doubled, when configured again."""
