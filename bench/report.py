"""Times `phoenix report`'s page for a long history: 100 drills and 30 runs of each backup job, from
synthetic data (the vault's answers are not part of it: they are one `phoenix-vault status`, `drills`
and `backups` call each). Prints the seconds to build and render the page and its size.

    .venv/bin/python bench/report.py [--drills 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "tests" / "unit"))

from conftest import SHOP_INVENTORY  # noqa: E402
from dashboard_data import backups, sources  # noqa: E402

from phoenix import dashboard  # noqa: E402
from phoenix.inventory import load_environment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--drills", type=int, default=100)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        inventory = Path(directory) / "inventories" / "shop.yml"
        inventory.parent.mkdir()
        inventory.write_text(SHOP_INVENTORY)
        environment = load_environment(inventory)
        gathered = sources(environment, drill_count=arguments.drills)
        gathered.backups = backups(environment, runs_per_job=30)
        started = time.monotonic()
        page = dashboard.write_page(Path(directory) / "page.html", gathered, "bench")
        seconds = time.monotonic() - started
        print(
            f"{arguments.drills} drills, {len(gathered.backups)} backup runs: page in {seconds:.2f}s,"
            f" {page.stat().st_size / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()
