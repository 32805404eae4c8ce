"""Config fields that carry their command-line help, so the CLI is derived from the config dataclasses.

``HfArgumentParser`` (transformers) turns each field into an option: its name (``--max-steps`` and
``--max_steps``), its type and default, and the metadata given here (help, choices, metavar, aliases).
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def option(default: Any, help: str, **argparse: Any) -> Any:  # noqa: A002 - argparse's own keyword
    """A dataclass field with ``default`` and its command-line ``help`` (and argparse keywords)."""
    metadata = {"help": help, **argparse}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)
