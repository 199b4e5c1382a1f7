"""The conversation a chat is part of: its id, the turns that go with the next question, and the log.

``chat -c`` and ``chat --cid ID`` start from a logged conversation (its usable turns become the
message history, see ``LogRecord.usable_in_history``); otherwise a new conversation begins, and
gets its id when its first exchange is logged. Logging problems never stop a chat: they are
reported as a warning and the chat goes on unlogged.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import click

from .failures import fail, warn
from .settings import first_messages

if TYPE_CHECKING:
    from ..types import Messages
    from .exchange import Exchange
    from .logstore import LogRecord, LogStore
    from .settings import ChatSettings

__all__ = ["Session", "open_session"]


class Session:
    def __init__(self, store: LogStore | None, endpoint: str = "",
                 history: list[LogRecord] | None = None) -> None:
        #: where exchanges are logged; None: not logging
        self.store = store
        #: ``offline`` or the base URL without credentials (set once the client exists)
        self.endpoint = endpoint
        self.conversation_id: str | None = history[-1].conversation_id if history else None
        self.turns: Messages = []
        self._name = history[0].prompt if history else ""
        for record in history or ():
            if record.usable_in_history:
                self.turns += [{"role": "user", "content": record.prompt},
                               {"role": "assistant", "content": record.response}]
        #: the last system prompt and model of the continued conversation (the defaults for it)
        self.system = history[-1].system if history else None
        self.model = history[-1].model_asked if history else None

    def messages(self, settings: ChatSettings, prompt: str) -> Messages:
        return [*first_messages(settings), *self.turns, {"role": "user", "content": prompt}]

    def reset(self) -> None:
        """Forget the turns: what follows is logged as a new conversation."""
        self.turns = []
        self.conversation_id = None

    def record(self, exchange: Exchange) -> None:
        """Keep the exchange in the conversation (as ``-i`` does) and log it."""
        answer = exchange.answer
        if exchange.status == "complete" or (exchange.status == "interrupted" and answer):
            self.turns += [{"role": "user", "content": exchange.prompt},
                           {"role": "assistant", "content": answer}]
        if self.store is None or not exchange.sent:
            return
        from .logstore import LogRecord, LogStoreError, new_id

        if self.conversation_id is None:
            self.conversation_id = new_id()
            self._name = exchange.prompt
        completion = exchange.received()
        usage = completion.usage if completion is not None else None
        choice = completion.choices[0] if completion is not None and completion.choices else None
        started = datetime.datetime.fromtimestamp(exchange.started, datetime.timezone.utc)
        record = LogRecord(
            id=new_id(), conversation_id=self.conversation_id, model_asked=exchange.settings.model,
            model=(completion.model or None) if completion is not None else None,
            system=exchange.settings.system, prompt=exchange.prompt, response=answer,
            reasoning=(choice.message.reasoning or None) if choice is not None else None,
            options=exchange.params, status=exchange.status,
            finish_reason=choice.finish_reason if choice is not None else None, error=exchange.error,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            total_tokens=usage.total_tokens if usage else None,
            usage=usage.to_dict() if usage else None, endpoint=self.endpoint,
            datetime_utc=started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            duration_ms=round(exchange.duration * 1000))
        try:
            self.store.add(record, conversation_name=" ".join(self._name.split())[:80])
        except LogStoreError as exc:
            warn(f"not logged: {exc}")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def open_session(*, log: bool, continue_latest: bool, conversation_id: str | None) -> Session:
    """The session for ``chat``: logging per ``--log``/``--no-log`` and ``logs on|off``, and the
    conversation to continue (a usage error if there is none)."""
    from . import config
    from .logstore import LogStore, LogStoreError

    path = config.logs_path()
    store: LogStore | None = None
    if continue_latest or conversation_id:
        if not path.exists():
            raise click.UsageError(f"there is no conversation to continue: the log {path} does not exist yet")
        try:
            store = LogStore(path)
        except LogStoreError as exc:
            fail(f"{exc}; cannot continue a conversation from it", 2)
        try:
            cid = conversation_id or store.latest_conversation()
            if cid is None:
                raise click.UsageError(f"there is no conversation to continue: the log {path} is empty")
            history = store.conversation(cid)
        except LogStoreError as exc:
            store.close()
            fail(str(exc), 2)
        except BaseException:
            store.close()
            raise
        if not history:
            store.close()
            raise click.UsageError(f"no conversation {cid!r} in the log; 'solarstream logs' shows the ids")
        if not log:
            store.close()
            store = None
        return Session(store, history=history)
    if log:
        try:
            store = LogStore(path)
        except LogStoreError as exc:
            warn(f"not logging: {exc}")
    return Session(store)
