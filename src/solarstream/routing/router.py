"""``Router``: one public model name served by several deployments, as a provider.

A call picks a deployment of the model (by the strategy, among those not cooling down), and moves
on to the next one when an error before the first token says another may answer (see
``failover``); then to the model's fallbacks. A failing deployment cools down for as long as the
API said (else ``cooldown`` seconds); when every candidate is cooling, the call waits for the
earliest to come back, bounded by ``max_wait`` and the call's total timeout. The router is the
only retry loop: with several deployments each attempt is sent with ``max_retries=0``; with a
single one the provider's own retry policy applies.

A request flows: ``stream``/``complete``/``embed`` -> ``_route`` (pick, prepare, attempt,
decide) -> the deployment's provider (``prepare_chat`` -> ``send``) -> one HTTP attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from .._http import Timeout
from .._retry import Grant
from .._stream import ChatStream
from ..errors import (
    InvalidRequestError,
    MissingAuthError,
    ModelNotSupportedError,
    RateLimitError,
    SolarstreamError,
)
from ..providers import AsyncGeneratorProvider, ChatRequest
from ..providers.spec import ModelEntry
from ..types import AsyncResult, ChatCompletion, CreateEmbeddingResponse, Messages, Model, StreamEvent
from .call import Call, Prepared, fallback_table
from .deployment import WILDCARD, Deployment, DeploymentState
from .failover import Decision, advised_cooldown, decide, reason
from .strategies import Strategy, strategy_named
from .stream import MAX_HELD, Opened, RoutedStream, carries_output

__all__ = ["NoDeploymentAvailableError", "Router"]

log = logging.getLogger("solarstream.router")

T = TypeVar("T")

#: wildcard deployments materialised per model name, at most (a gateway's clients choose the names)
_MAX_DERIVED = 1000

class NoDeploymentAvailableError(RateLimitError):
    """Every deployment that could serve the call is cooling down for longer than the call may wait."""


class Router(AsyncGeneratorProvider):
    """Several deployments behind public model names, with fallbacks, cooldowns and a strategy.

    ``Router(deployments=[Deployment("solar-pro4", api_key=KEY_A), Deployment("solar-pro4",
    api_key=KEY_B), Deployment("solar-pro3", api_key=KEY_A)], fallbacks={"solar-pro4": ["solar-pro3"]},
    strategy="usage-based")`` works wherever a provider does (``AsyncClient(provider=router)``, the
    gateway, the seed-style ``create_async_generator``). See docs/routing.md.
    """

    url: ClassVar[str | None] = None
    working: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    owned_by: ClassVar[str] = "solarstream-router"

    def __init__(
        self,
        deployments: Sequence[Deployment | Mapping[str, Any]],
        *,
        fallbacks: Any = None,
        context_window_fallbacks: Any = None,
        default_fallbacks: Sequence[str] = (),
        strategy: str | Strategy = "ordered",
        cooldown: float = 5.0,
        removal_cooldown: float = 300.0,
        max_wait: float = 60.0,
        max_attempts: int | None = None,
        retry_on: Sequence[type[BaseException]] = (),
        timeout: Timeout | float | None = None,
        learn_limits: bool = False,
        name: str = "router",
    ) -> None:
        configs = [Deployment.coerce(d) for d in deployments]
        if not configs:
            raise InvalidRequestError("a router needs at least one deployment", param="deployments")
        for label, value in (("cooldown", cooldown), ("removal_cooldown", removal_cooldown),
                             ("max_wait", max_wait)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InvalidRequestError(f"{label} must be a number of seconds, 0 or more, not {value!r}",
                                          param=label)
        if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int)
                                         or max_attempts < 1):
            raise InvalidRequestError(f"max_attempts must be a whole number, 1 or more, not {max_attempts!r}",
                                      param="max_attempts")
        self.name = name
        self.strategy = strategy_named(strategy)
        self.cooldown = float(cooldown)
        self.removal_cooldown = float(removal_cooldown)
        self.max_wait = float(max_wait)
        self.max_attempts = max_attempts
        self.retry_on = tuple(retry_on)
        #: pace each deployment at the limits its rate-limit headers report (not only at configured rpm/tpm)
        self.learn_limits = learn_limits
        #: bounds each whole call (attempts and waits for cooldowns): a number is its total in seconds
        self.timeout = (timeout if isinstance(timeout, Timeout) or timeout is None
                        else Timeout(total=Timeout.coerce(timeout).connect))
        if isinstance(fallbacks, Sequence) and not isinstance(fallbacks, str) and fallbacks and \
                all(isinstance(f, str) for f in fallbacks):
            default_fallbacks, fallbacks = [*default_fallbacks, *fallbacks], None  # a plain list: for every model
        self.fallbacks = fallback_table(fallbacks, "fallbacks")
        self.context_window_fallbacks = fallback_table(context_window_fallbacks, "context_window_fallbacks")
        self.default_fallbacks = list(default_fallbacks)
        self.deployments: list[DeploymentState] = []
        #: the deployment that answered the latest call (g4f's ``last_provider``)
        self.last_deployment: DeploymentState | None = None
        self._groups: dict[str, list[DeploymentState]] = {}
        self._wildcards: list[DeploymentState] = []
        self._derived: dict[tuple[str, str], DeploymentState] = {}
        counts: dict[str, int] = {}
        names: set[str] = set()
        for index, config in enumerate(configs):
            counts[config.model_name] = counts.get(config.model_name, 0) + 1
            label = config.name or f"{config.model_name}#{counts[config.model_name]}"
            if label in names:
                raise InvalidRequestError(f"two deployments are named {label!r}; names must be unique",
                                          param="name")
            names.add(label)
            state = DeploymentState(config, config.build(), label, index, learn=learn_limits,
                                    owned=isinstance(config.provider, str))
            self.deployments.append(state)
            if config.model_name == WILDCARD:
                self._wildcards.append(state)
            else:
                self._groups.setdefault(config.model_name, []).append(state)
        for table in (self.fallbacks, self.context_window_fallbacks):
            for source, targets in table.items():
                for target in targets:
                    if target not in self._groups and not self._wildcards:
                        raise InvalidRequestError(f"fallback {source!r} -> {target!r}: no deployment serves "
                                                  f"{target!r}", param="fallbacks")
        for target in self.default_fallbacks:
            if target not in self._groups and not self._wildcards:
                raise InvalidRequestError(f"default fallback {target!r}: no deployment serves it", param="fallbacks")

    def __repr__(self) -> str:
        return (f"Router(models={list(self._groups) + (['*'] if self._wildcards else [])!r}, "
                f"deployments={len(self.deployments)}, strategy={self.strategy.name!r})")

    # --- what is served -------------------------------------------------------------------------

    @property
    def model_names(self) -> list[str]:
        """The public model names (a wildcard deployment serves any other name too)."""
        return list(self._groups)

    @property
    def default_model(self) -> str:
        if self._groups:
            return next(iter(self._groups))
        return str(getattr(self._wildcards[0].provider, "default_model", "") or "")

    def group(self, model: str) -> list[DeploymentState]:
        """The deployments that serve ``model`` (wildcards materialised for that name)."""
        found = self._groups.get(model)
        if found is not None:
            return found
        if not self._wildcards:
            return []
        return [self._derive(w, model, model_name=model, model=w.config.model or model) for w in self._wildcards]

    def _derive(self, state: DeploymentState, label: str, **changes: Any) -> DeploymentState:
        key = (state.name, label)
        derived = self._derived.get(key)
        if derived is None:
            if len(self._derived) >= _MAX_DERIVED:
                idle = next((k for k, d in self._derived.items() if d.in_flight == 0), None)
                if idle is not None:
                    del self._derived[idle]
            derived = self._derived[key] = state.derive(f"{state.name}:{label}", **changes)
        return derived

    def _resolve_model(self, model: str) -> str:
        model = model or self.default_model
        if model not in self._groups and not self._wildcards:
            raise ModelNotSupportedError(f"no deployment of this router serves model {model!r}; it serves: "
                                         f"{', '.join(self._groups)}", param="model")
        return model

    # --- a call ---------------------------------------------------------------------------------

    def _call(self, model: str, proxy: str | None, kwargs: dict[str, Any]) -> Call:
        model = self._resolve_model(model)
        groups = [model, *self.fallbacks.get(model, self.default_fallbacks)]
        candidates = {id(s) for name in groups for s in self.group(name)}
        candidates |= {id(s) for name in self.context_window_fallbacks.get(model, ()) for s in self.group(name)}
        single = len(candidates) == 1
        timeout = kwargs.get("timeout")
        limit = self.max_attempts or (1 if single else 2 * len(candidates))
        return Call(model, kwargs, proxy, groups, single, limit,
                     Timeout.coerce(timeout) if timeout is not None else self.timeout)

    def _kwargs(self, call: Call, state: DeploymentState) -> dict[str, Any]:
        kwargs = dict(call.kwargs)
        if not call.single and state.streams:
            kwargs["max_retries"] = 0  # the router is the retry loop: the next deployment, at once
        config = state.config
        if not isinstance(config.provider, str):  # a given provider object: the deployment's key and URL
            if config.api_key is not None:
                kwargs["api_key"] = config.api_key
            if config.base_url is not None:
                kwargs["base_url"] = config.base_url
        return kwargs

    def _validate(self, call: Call, messages: Messages, *, stream: bool) -> None:
        """Check the request against the model's first deployment now, before anything is sent."""
        state = self.group(call.model)[0]
        with contextlib.suppress(MissingAuthError):  # no key there: the call removes it and goes on
            call.prepared[id(state)] = self._prepare(call, state, messages, stream=stream)

    def _prepare(self, call: Call, state: DeploymentState, messages: Messages, *, stream: bool) -> Prepared:
        if id(state) in call.prepared:
            return call.prepared.pop(id(state))
        provider = state.provider
        if state.prepares:
            return provider.prepare_chat(state.model, messages, stream=stream, proxy=call.proxy,  # type: ignore[no-any-return]
                                         **self._kwargs(call, state))
        if stream and state.streams:
            return provider.stream(state.model, messages, proxy=call.proxy, **self._kwargs(call, state))  # type: ignore[no-any-return]
        return None

    def _candidates(self, call: Call) -> Iterable[list[DeploymentState]]:
        if call.first:
            yield call.first
        for name in call.groups:
            yield self.group(name)

    def _select(self, call: Call, tokens: int) -> tuple[DeploymentState | None, float | None]:
        """A deployment to send to now, else how long until the earliest candidate comes back (None: none left).

        Group by group (the model, then its fallbacks): a ready deployment, picked by the strategy; else
        the one whose rate limit gives it a slot soonest (its limiter waits for that exact slot, so
        paced deployments lose no time between requests, and a model is not left for its fallback
        only because it is busy); a group whose deployments all cool down is passed over.
        """
        earliest: float | None = None
        remaining = call.deadline.remaining()
        for states in self._candidates(call):
            ready = []
            paced: tuple[float, DeploymentState] | None = None
            for state in states:
                key = id(state)
                if key in call.excluded or key in call.tried:
                    continue
                wait = state.available_in(tokens)
                if wait <= 0:
                    ready.append(state)
                    continue
                if state.cooling_for() <= 0 and (paced is None or wait < paced[0]):
                    paced = (wait, state)
                if earliest is None or wait < earliest:
                    earliest = wait
            if ready:
                return self.strategy.pick(ready), None
            if paced is not None and paced[0] <= self.max_wait and (remaining is None or paced[0] < remaining):
                return paced[1], None
        return None, earliest

    async def _next(self, call: Call, tokens: int) -> DeploymentState:
        while True:
            state, wait = self._select(call, tokens)
            if state is not None:
                return state
            if wait is None:
                if call.tried - call.excluded:  # a new round: the failed ones, once their cooldown is over
                    call.tried.clear()
                    continue
                raise self._exhausted(call)
            remaining = call.deadline.remaining()
            if wait > self.max_wait or (remaining is not None and wait >= remaining):
                raise self._exhausted(call, wait)
            log.debug("router: every deployment for %r is cooling down; waiting %.2fs", call.model, wait)
            await asyncio.sleep(wait)

    def _exhausted(self, call: Call, wait: float | None = None) -> SolarstreamError:
        """The error a call ends with when no deployment is left: the last one's, else a 429 saying when."""
        if call.errors:
            error = call.errors[-1][1]
            if wait is not None and isinstance(error, RateLimitError) and error.retry_after is None:
                error.retry_after = wait
            return error
        names = ", ".join(f"{s.name} ({s.cooling_reason or 'rate limit'})" for group in self._candidates(call)
                          for s in group if s.available_in() > 0) or "none"
        shown = f"; the first is back in {wait:.1f}s" if wait is not None else ""
        return NoDeploymentAvailableError(
            f"no deployment can serve {call.model!r} now: every one is cooling down or at its rate limit "
            f"({names}){shown}; retry later", status_code=None, code="no_deployment_available", retry_after=wait)

    async def _route(self, call: Call, messages: Messages, *, stream: bool,
                     attempt: Callable[[DeploymentState, Prepared, Grant], Awaitable[T]], chat: bool = True) -> T:
        """Try deployments until one answers or the errors say stop; see the module docstring."""
        if call.timeout is not None:
            call.deadline = call.timeout.deadline()
        previous: tuple[DeploymentState, SolarstreamError] | None = None
        while True:
            state = await self._next(call, 0)
            try:
                prepared = self._prepare(call, state, messages, stream=stream) if chat else None
            except InvalidRequestError as error:  # this deployment refuses the request (another model's rules)
                log.info("router: %s cannot take this request (%s); skipping it", state.name, reason(error))
                call.excluded.add(id(state))
                call.errors.append((state, error))
                continue
            except MissingAuthError as error:  # no key for this deployment: out, as a refused key would be
                log.warning("router: %s has no API key (%s); removing it for %gs", state.name, reason(error),
                            self.removal_cooldown)
                self._failed(call, state, error)
                continue
            if previous is not None and previous[0] is state:
                log.warning("router: %r tries %s again, its cooldown over, after %s", call.model, state.name,
                            reason(previous[1]))
            elif previous is not None:
                log.warning("router: %r failed over from %s to %s after %s", call.model, previous[0].name,
                            state.name, reason(previous[1]))
            tokens = prepared.tokens if isinstance(prepared, ChatRequest) else 0
            grant = await state.limiter.acquire(tokens, call.deadline)
            call.attempts += 1
            state.begin()
            try:
                result = await attempt(state, prepared, grant)
            except SolarstreamError as error:
                state.end()
                state.settle(grant, 0)
                if isinstance(prepared, ChatStream):
                    await prepared.aclose()
                decision = self._failed(call, state, error)
                if decision is Decision.RAISE:
                    raise
                if call.attempts >= call.max_attempts:
                    exhausted = self._exhausted(call)
                    if exhausted is error:
                        raise
                    raise exhausted from error
                previous = (state, error)
            except BaseException:
                state.end()
                state.settle(grant, 0)
                raise
            else:
                self.last_deployment = state
                return result

    def _failed(self, call: Call, state: DeploymentState, error: SolarstreamError) -> Decision:
        """Record a failed attempt, cool the deployment as the error says, and change the plan."""
        decision = decide(error, self.retry_on)
        if decision is Decision.RAISE:
            return decision
        call.errors.append((state, error))
        if decision is Decision.CONTEXT:
            fallbacks = self.context_window_fallbacks.get(call.model)
            if not fallbacks or call.context_switched:
                return Decision.FAILOVER if self.retry_on and isinstance(error, self.retry_on) else Decision.RAISE
            call.context_switched = True
            call.groups, call.first = list(fallbacks), []
            call.excluded.add(id(state))
            return decision
        state.failed(error)
        self._cool(state, error, decision)
        if decision is Decision.FAILOVER:
            call.tried.add(id(state))
            return decision
        call.excluded.add(id(state))
        if decision is Decision.MODEL:
            successor = self._successor(state, error)
            if successor is not None:
                call.first.append(self._derive(state, f"->{successor}", model=successor))
                call.max_attempts += 1  # the successor is a new candidate, also for a single deployment
        return decision

    def _cool(self, state: DeploymentState, error: SolarstreamError, decision: Decision) -> None:
        advised = advised_cooldown(error)
        if decision is Decision.FAILOVER:
            seconds = advised if advised is not None else self.cooldown
        else:
            seconds = max(advised or 0.0, self.removal_cooldown)
        if seconds > 0:
            state.cool(seconds, reason(error))

    def _successor(self, state: DeploymentState, error: SolarstreamError) -> str | None:
        from ..errors import APIStatusError

        catalog = getattr(getattr(state.provider, "spec", None), "catalog", None)
        successor = catalog.retired.get(state.model) if catalog is not None else None
        if successor is None and isinstance(error, APIStatusError):
            successor = state.quirks.successor(error)
        return successor if successor and successor != state.model else None

    # --- the provider interface --------------------------------------------------------------------

    def stream(self, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any) -> RoutedStream:
        """A stream that fails over until its first output; validated now against the model's first deployment."""
        call = self._call(model, proxy, kwargs)
        self._validate(call, messages, stream=True)

        async def attempt(state: DeploymentState, prepared: Prepared, grant: Grant) -> Opened:
            if isinstance(prepared, ChatRequest):
                inner = state.provider.open_stream(prepared, deadline=call.deadline)
            else:
                assert isinstance(prepared, ChatStream)
                inner = prepared
            held: list[dict[str, Any]] = []
            try:
                async for payload in inner.payloads():
                    held.append(payload)
                    if carries_output(payload) or len(held) >= MAX_HELD:
                        break
            except BaseException:
                await inner.aclose()
                raise
            state.observe(state.quirks.rate_limits(inner.response_headers))
            return Opened(inner, held, state.name, lambda done, error: self._stream_ended(state, grant, done, error))

        async def open_routed() -> Opened:
            return await self._route(call, messages, stream=True, attempt=attempt)

        return RoutedStream(open_routed, model=call.model)

    def _stream_ended(self, state: DeploymentState, grant: Grant, stream: ChatStream,
                      error: SolarstreamError | None) -> None:
        from .stream import _ClosedEarly

        state.end()
        state.settle(grant, stream.usage.total_tokens if stream.usage else None)
        if error is None:
            state.successes += 1
        elif not isinstance(error, _ClosedEarly):
            # after output nothing is hidden by failing over, but later calls should know
            state.failed(error)
            decision = decide(error, self.retry_on)
            if decision in (Decision.FAILOVER, Decision.REMOVE):
                self._cool(state, error, decision)

    def stream_events(self, model: str, messages: Messages, proxy: str | None = None,
                      **kwargs: Any) -> AsyncIterator[StreamEvent]:
        """Typed events for one routed request (see ``ChatStream.events``)."""
        return self.stream(model, messages, proxy=proxy, **kwargs).events()

    def create_async_generator(
        self, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> AsyncResult:
        """The seed's call: the answer's text, piece by piece, from whichever deployment answers."""
        call = self._call(model, proxy, kwargs)
        if all(s.streams for group in self._candidates(call) for s in group):
            return self.stream(model, messages, proxy=proxy, **kwargs).text()
        return self._text(call, messages)

    async def _text(self, call: Call, messages: Messages) -> AsyncResult:
        """Text pieces through each deployment's own ``create_async_generator`` (providers that only
        give text, as the seed's do): failing over until the first piece, never after it."""

        async def attempt(state: DeploymentState, prepared: Prepared,
                          grant: Grant) -> tuple[DeploymentState, Any, str]:
            pieces = state.provider.create_async_generator(state.model, messages, proxy=call.proxy,
                                                           **self._kwargs(call, state))
            try:
                async for piece in pieces:
                    if piece:
                        return state, pieces, str(piece)
            except BaseException:
                await _close(pieces)
                raise
            return state, pieces, ""

        state, pieces, first = await self._route(call, messages, stream=False, attempt=attempt, chat=False)
        error: BaseException | None = None
        try:
            if first:
                yield first
                async for piece in pieces:
                    if piece:
                        yield str(piece)
        except BaseException as exc:
            error = exc
            raise
        finally:
            await _close(pieces)
            state.end()
            if error is None:
                state.successes += 1
            elif isinstance(error, SolarstreamError):
                state.failed(error)
                decision = decide(error, self.retry_on)
                if decision in (Decision.FAILOVER, Decision.REMOVE):
                    self._cool(state, error, decision)

    async def complete(self, model: str, messages: Messages, proxy: str | None = None,
                       **kwargs: Any) -> ChatCompletion:
        """One non-streamed request, failing over on the same errors as a stream does before its first token."""
        call = self._call(model, proxy, kwargs)
        self._validate(call, messages, stream=False)

        async def attempt(state: DeploymentState, prepared: Prepared, grant: Grant) -> ChatCompletion:
            if isinstance(prepared, ChatRequest):
                completion: ChatCompletion = await state.provider.send_completion(prepared, deadline=call.deadline)
            else:
                completion = await state.provider.complete(state.model, messages, proxy=proxy,
                                                           **self._kwargs(call, state))
            self._answered(state, grant, completion.response_headers,
                           completion.usage.total_tokens if completion.usage else None)
            return completion

        return await self._route(call, messages, stream=False, attempt=attempt)

    async def embed(self, model: str, input: str | list[str], proxy: str | None = None,
                    **kwargs: Any) -> CreateEmbeddingResponse:
        """Embeddings from the deployments of ``model``, with the same failover as chat."""
        call = self._call(model, proxy, kwargs)

        async def attempt(state: DeploymentState, prepared: Prepared, grant: Grant) -> CreateEmbeddingResponse:
            result: CreateEmbeddingResponse = await state.provider.embed(state.model, input, proxy=proxy,
                                                                         **self._kwargs(call, state))
            self._answered(state, grant, None, result.usage.total_tokens if result.usage else None)
            return result

        return await self._route(call, [], stream=False, attempt=attempt, chat=False)

    def _answered(self, state: DeploymentState, grant: Grant, headers: Mapping[str, str] | None,
                  tokens: int | None) -> None:
        state.end()
        state.successes += 1
        state.settle(grant, tokens)
        if headers:  # a completion keeps them as a plain dict: the quirks look names up in lower case
            state.observe(state.quirks.rate_limits({name.lower(): value for name, value in headers.items()}))

    async def list_models(self) -> list[Model]:
        """The public model names (with wildcard deployments: also what their first provider lists)."""
        models = [Model(name, 0, self.owned_by) for name in self._groups]
        if self._wildcards:
            listed = await self._wildcards[0].provider.list_models()
            models += [m for m in listed if m.id not in self._groups]
        return models

    def known_models(self) -> list[ModelEntry] | None:
        entries = [ModelEntry(name, self._kind(states[0])) for name, states in self._groups.items()]
        for wildcard in self._wildcards:
            known = wildcard.provider.known_models() if callable(getattr(wildcard.provider, "known_models", None)) \
                else None
            if known is None:
                return entries if entries else None
            seen = {e.id for e in entries}
            entries += [e for e in known if e.id not in seen]
        return entries

    @staticmethod
    def _kind(state: DeploymentState) -> str:
        catalog = getattr(getattr(state.provider, "spec", None), "catalog", None)
        return "embedding" if catalog is not None and state.model in catalog.embedding_models else "chat"

    def status(self) -> dict[str, Any]:
        """What the router is doing, JSON-ready: per deployment its cooldown, calls in flight,
        successes, failures and last error (also for wildcard and successor deployments in use)."""
        states = [*self.deployments, *self._derived.values()]
        return {
            "name": self.name,
            "strategy": self.strategy.name,
            "time": round(time.time(), 3),
            "models": {name: [s.name for s in group] for name, group in self._groups.items()},
            "fallbacks": self.fallbacks,
            "context_window_fallbacks": self.context_window_fallbacks,
            "default_fallbacks": self.default_fallbacks,
            "deployments": [s.status() for s in states],
        }

    async def aclose(self) -> None:
        """Close the connections of every deployment's provider (on the running loop)."""
        seen: set[int] = set()
        for state in self.deployments:
            provider = state.provider
            if id(provider) in seen or not callable(getattr(provider, "aclose", None)):
                continue
            seen.add(id(provider))
            await provider.aclose()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _close(pieces: Any) -> None:
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        await aclose()
