"""Logging set-up for the processes that own a terminal (the CLI and the job entrypoints)."""

from __future__ import annotations

import logging


def configure_logging(verbose: bool = False) -> None:
    """Progress lines at INFO (DEBUG with `verbose`); py4j's per-message chatter kept out."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # botocore logs where it found credentials and endpoints, once per client.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # kafka-python (sluiceway produce) logs every connection and metadata refresh.
    logging.getLogger("kafka").setLevel(logging.WARNING)
