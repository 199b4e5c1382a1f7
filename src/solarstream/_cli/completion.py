"""Shell completion of option values: model names from the table, conversation ids from the log.

(Command names are completed by the group from its table, without importing the commands.)
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

__all__ = ["complete_conversation", "complete_model"]


def complete_model(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from ..providers.upstage import models

    return [CompletionItem(name, help=f"current ({info.dated_id})")
            for name, info in models.MODELS.items() if name.startswith(incomplete)]


def complete_conversation(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from .config import logs_path
    from .logstore import LogStore

    path = logs_path()
    if not path.exists():
        return []
    try:
        with LogStore(path) as store:
            return [CompletionItem(cid, help=name) for cid, name in store.conversation_ids(incomplete)]
    except Exception:  # completion must never print a traceback
        return []
