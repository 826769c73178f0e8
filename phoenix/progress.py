"""Progress lines for long steps, on stderr so stdout stays machine-readable."""

import sys
import time

_started = time.monotonic()


def say(message: str) -> None:
    """Prints one progress line with the seconds elapsed since start."""
    print(f"[phoenix {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)
