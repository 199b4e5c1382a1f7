"""``solarstream chat``: one question (PROMPT and/or stdin), or a conversation with ``-i``.

The pieces live beside it: the question (``prompt.py``), the settings and model choice
(``settings.py``), ``-o`` (``params.py``), one request (``exchange.py``), the conversation and
its log (``session.py``); ``interactive.py`` is imported only for ``-i`` and never imports this.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

from .completion import complete_conversation, complete_model
from .connection import Connection, connection_options, endpoint_label, open_client
from .exchange import Exchange, usage_line
from .params import merge, parse_options
from .prompt import check_prompt, read_prompt
from .render import Renderer, notice
from .runner import run
from .session import Session, open_session
from .settings import ChatSettings, choose_model

__all__ = ["chat"]


def _named_params(**values: Any) -> Iterator[tuple[str, Any]]:
    return ((name, value) for name, value in values.items() if value is not None)


@click.command()
@click.argument("prompt", required=False)
@click.option("-m", "--model", metavar="NAME", envvar="SOLARSTREAM_MODEL", show_envvar=True,
              shell_complete=complete_model,
              help="Model name, alias or dated id (see 'solarstream models'). Without it: the continued "
                   "conversation's model, else 'solarstream models default', else solar-pro4.")
@click.option("-s", "--system", metavar="TEXT", help="System prompt.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature, 0 to 2.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Longest answer, in tokens (reasoning counts).")
@click.option("--reasoning-effort", metavar="LEVEL",
              help="solar-pro4: none, minimal, low, medium, high, xhigh, max; solar-pro3: low, medium, high.")
@click.option("-o", "--option", "options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Any request parameter, e.g. -o top_p 0.9 -o stop '[\"END\"]'; VALUE is JSON if it parses "
                   "as JSON, else a string. Repeatable.")
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer instead of streaming it.")
@click.option("--json", "json_lines", is_flag=True,
              help="Print one JSON chunk per line (with --no-stream: the completion), reasoning and usage included.")
@click.option("-u", "--usage", "show_usage", is_flag=True, help="Print the token usage to stderr after the answer.")
@click.option("-c", "--continue", "continue_latest", is_flag=True,
              help="Continue the most recent logged conversation (its turns are sent as history).")
@click.option("--cid", "--conversation", "conversation_id", metavar="ID", shell_complete=complete_conversation,
              help="Continue the conversation with this id (see 'solarstream logs').")
@click.option("-n", "--no-log", is_flag=True, help="Do not log this prompt and answer.")
@click.option("--log", "force_log", is_flag=True, help="Log even when 'solarstream logs off' is in force.")
@click.option("-i", "--interactive", is_flag=True,
              help="A conversation: /exit, /reset, /model NAME, /system TEXT, !multi ... !end, /help. Ctrl-C "
                   "stops an answer (the partial answer is kept in the conversation); Ctrl-C twice or Ctrl-D "
                   "leaves.")
@click.option("--fallback", "fallbacks", multiple=True, metavar="MODEL",
              help="A model to try when the model fails before answering (429, 5xx, connection errors, a retired "
                   "model); repeatable, tried in order.")
@click.option("--config", "config_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Route through the deployments and fallbacks of this TOML file (docs/routing.md).")
@connection_options
def chat(
    prompt: str | None,
    model: str | None,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    reasoning_effort: str | None,
    options: tuple[tuple[str, str], ...],
    no_stream: bool,
    json_lines: bool,
    show_usage: bool,
    continue_latest: bool,
    conversation_id: str | None,
    no_log: bool,
    force_log: bool,
    interactive: bool,
    fallbacks: tuple[str, ...],
    config_file: str | None,
    **connection: Any,
) -> None:
    """Ask a Solar model; the answer streams to stdout.

    PROMPT is the question. Without it (or with '-') the question is read from stdin; with both,
    stdin comes first, then a space and PROMPT (as in llm), so `cat notes.txt | solarstream chat
    "Summarise"` works. Reasoning, when the model gives it, is shown dimmed before the answer on a
    terminal; when stdout is piped only the answer goes there (reasoning goes to stderr if that is
    a terminal).

    Prompts and answers are logged (see 'solarstream logs'); -c or --cid continues a logged
    conversation.

    Exit status: 0 ok, 1 API or network error, 2 bad usage (also: no API key, or a request that
    is known to be invalid, found before sending), 130 interrupted.
    """
    conn = Connection.from_options({**connection, "fallbacks": fallbacks, "config": config_file})
    conn.check()
    if json_lines and interactive:
        raise click.UsageError("--json is for scripts; it cannot be combined with --interactive")
    if interactive and prompt == "-":
        raise click.UsageError("--interactive reads your questions from the terminal; give PROMPT as text or "
                               "leave it out")
    if continue_latest and conversation_id:
        raise click.UsageError("give -c (the latest conversation) or --cid ID, not both")
    if no_log and force_log:
        raise click.UsageError("give --log or --no-log, not both")
    check_prompt(prompt)
    named = dict(_named_params(temperature=temperature, max_tokens=max_tokens, reasoning_effort=reasoning_effort))
    extra = parse_options(options)
    params = merge(named, extra)
    if not interactive:
        prompt = read_prompt(prompt, sys.stdin)  # before the log is opened: usage errors come first

    from .config import logging_enabled

    log = force_log or (not no_log and logging_enabled())
    session = open_session(log=log, continue_latest=continue_latest, conversation_id=conversation_id)
    try:
        settings = ChatSettings(
            model=choose_model(model, session.model),
            system=system if system is not None else session.system,
            params=params, option_keys=frozenset(extra), stream=not no_stream, json_lines=json_lines,
            show_usage=show_usage)
        if interactive:
            from .interactive import converse

            run(converse(conn, settings, session, prompt))
            return
        assert prompt is not None
        run(_ask_once(conn, settings, session, prompt))
    finally:
        session.close()


async def _ask_once(conn: Connection, settings: ChatSettings, session: Session, prompt: str) -> None:
    exchange = Exchange(prompt, settings, session.messages(settings, prompt))
    renderer = Renderer(json_lines=settings.json_lines)
    async with open_client(conn) as client:
        session.endpoint = endpoint_label(conn, client)
        try:
            completion = await exchange.run(client, renderer)
        finally:
            session.record(exchange)  # first: ending the line can fail too (a reader that left)
            renderer.finish()
    if settings.show_usage:
        notice(usage_line(completion.usage))
