"""``solarstream logs``: read the conversation log, and switch logging off and on (as ``llm logs``).

The output is Markdown, one section per prompt, oldest first, as ``llm logs`` prints it; ``--json``
gives the records as a JSON array for scripts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from . import config
from .completion import complete_conversation
from .failures import fail
from .groups import DefaultGroup
from .render import notice

if TYPE_CHECKING:
    from .logstore import LogRecord, LogStore

__all__ = ["logs", "markdown"]


def _open() -> LogStore | None:
    """The log, or None (with a notice) if nothing was logged yet; opening never creates it."""
    from .logstore import LogStore, LogStoreError

    path = config.logs_path()
    if not path.exists():
        notice(f"(nothing logged yet; the log will be {path})")
        return None
    try:
        return LogStore(path)
    except LogStoreError as exc:
        fail(str(exc), 2)


@click.group(cls=DefaultGroup, default="list")
def logs() -> None:
    """The log of prompts and answers (on by default).

    \b
    solarstream logs [-n N] [-q TEXT] [--cid ID] [--json]   recent entries (the 'list' command)
    solarstream logs path                                   where the log is
    solarstream logs off | on                               stop or resume logging
    """


def _usage_text(record: LogRecord) -> str:
    if record.total_tokens is None:
        return "not reported"
    return f"{record.prompt_tokens} input, {record.completion_tokens} output, {record.total_tokens} total"


def markdown(record: LogRecord, *, usage: bool = False) -> str:
    """One record as ``llm logs`` shows one: a heading, the model, then prompt, system and answer."""
    lines = [f"# {record.datetime_utc}    conversation: {record.conversation_id} id: {record.id}", ""]
    model = f"Model: **{record.model_asked}**"
    if record.model and record.model != record.model_asked:
        model += f" (answered by {record.model})"
    lines += [model, ""]
    if record.endpoint == "offline":
        lines += ["Offline: the answer came from solarstream's built-in emulator", ""]
    if record.status == "interrupted":
        lines += ["Status: **interrupted** (Ctrl-C): the answer below is the part that arrived", ""]
    elif record.status == "failed":
        lines += [f"Status: **failed**: {record.error}", ""]
    options = {k: v for k, v in record.options.items() if k != "stream_options"}
    if options:
        lines += [f"Options: `{json.dumps(options, ensure_ascii=False)}`", ""]
    lines += ["## Prompt", "", record.prompt, ""]
    if record.system:
        lines += ["## System", "", record.system, ""]
    lines += ["## Response", "", record.response or "(no answer)", ""]
    if usage:
        lines += ["## Token usage", "", _usage_text(record), ""]
    return "\n".join(lines)


@logs.command(name="list", short_help="Recent prompts and answers (the default command).")
@click.option("-n", "--count", type=click.IntRange(min=0), default=None,
              help="How many entries, newest last (default 3; 0 for all; all of a conversation with --cid/-c).")
@click.option("-q", "--query", metavar="TEXT", help="Only entries whose prompt, system prompt or answer has TEXT.")
@click.option("-m", "--model", metavar="NAME", help="Only entries of this model (as asked for or as answered).")
@click.option("--cid", "--conversation", "conversation_id", metavar="ID", shell_complete=complete_conversation,
              help="Only this conversation.")
@click.option("-c", "--current", is_flag=True, help="Only the most recent conversation.")
@click.option("-r", "--response", "response_only", is_flag=True, help="Print only the last answer's text.")
@click.option("-u", "--usage", is_flag=True, help="Include token usage.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as a JSON array.")
def list_logs(count: int | None, query: str | None, model: str | None, conversation_id: str | None,
              current: bool, response_only: bool, usage: bool, as_json: bool) -> None:
    """Show logged prompts and their answers, oldest first."""
    if current and conversation_id:
        raise click.UsageError("give -c (the latest conversation) or --cid ID, not both")
    store = _open()
    if store is None:
        if as_json:
            click.echo("[]")
        return
    with store:
        if current:
            conversation_id = store.latest_conversation() or ""
        elif conversation_id and not store.conversation(conversation_id):
            raise click.UsageError(f"no conversation {conversation_id!r} in the log; 'solarstream logs' shows the ids")
        if count is None:
            count = 0 if conversation_id else 3
        records = [] if conversation_id == "" else \
            store.recent(count, query=query, model=model, conversation_id=conversation_id)
    if response_only:
        if records:
            click.echo(records[-1].response)
        return
    if as_json:
        click.echo(json.dumps([r.to_json() for r in records], ensure_ascii=False, indent=2))
        return
    click.echo("\n".join(markdown(r, usage=usage) for r in records), nl=False)


@logs.command(name="path", short_help="Print where the log is.")
def logs_path() -> None:
    """Print where the log is (set SOLARSTREAM_LOGS_PATH or SOLARSTREAM_DATA_DIR to move it)."""
    click.echo(config.logs_path())


@logs.command(name="status", short_help="Whether logging is on, and what the log holds.")
def logs_status() -> None:
    """Say whether logging is on, where the log is, and how much it holds."""
    click.echo(f"Logging is {'on' if config.logging_enabled() else 'off'}")
    path = config.logs_path()
    store = _open()
    if store is None:
        return
    with store:
        conversations, records = store.counts()
    click.echo(f"Log: {path}")
    click.echo(f"Conversations: {conversations}")
    click.echo(f"Prompts and answers: {records}")


@logs.command(name="off")
def logs_off() -> None:
    """Stop logging (chat --log still logs one prompt)."""
    config.set_logging(False)
    notice("(logging is off: 'solarstream logs on' turns it back on)")


@logs.command(name="on")
def logs_on() -> None:
    """Log every prompt and answer again (chat --no-log still skips one)."""
    config.set_logging(True)
    notice("(logging is on)")
