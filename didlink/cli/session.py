"""The CLI's live sessions: `didlink invite` (live), `didlink accept` of a live invitation and
`didlink chat CONTACT`, as a frontend of `didlink.Agent`.

Theory of operation (specs/cli-jsonl.md)
----------------------------------------
The command reads its settings (DIDLINK_*_TIMEOUT, the ICE environment, `--history`, `--files`)
and unlocks the identity (passphrase prompt, key agent or device token: `Profile.unlock`) before
anything is printed, so a mistake there is a user error (exit 2). It then opens an `Agent` on
the process's one store connection and starts the session (`Agent.invite`, `reconnect`,
`accept`) with a listener: every event of the `Session` is rendered as it happens, by one of
three renderers: JSON lines (`--jsonl`, didlink/jsonl.py `JsonlSink`, byte for byte the
`--jsonl` events of specs/cli-jsonl.md through `events.event_fields`), the line mode
(`HumanSink`: pipes, TERM=dumb) or the chat screen (didlink/chat/screen.py). A `SessionWarning`
is the renderer's warning line. Input goes the other way: stdin lines (`LineReader`) or the chat
screen's prompt become the commands of didlink/session/commands.py, and each command one call
of a `Session` method. The exit code is the session's (`Session.exit_code`).

No session machinery is imported here (tests/test_frontend_imports.py): only the Agent's API.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager

import click

from didlink.agent import (
    Agent,
    EventListener,
    Session,
    TransferInProgress,
    check_invitation,
    run,
    timeouts_from_env,
)
from didlink.chat import screen as chat_ui
from didlink.chat.screen import ChatScreen
from didlink.cli.history_flag import history_requested
from didlink.cli.interrupt import InterruptGuard
from didlink.errors import UserError
from didlink.events import Event, SessionWarning, event_fields
from didlink.file_policy import files_policy
from didlink.jsonl import (
    AcceptFile,
    BadCommand,
    Command,
    ConfirmSas,
    EventSink,
    Expecting,
    HumanSink,
    JsonlSink,
    LineReader,
    Quit,
    RefuseFile,
    RejectSas,
    SendFile,
    SendText,
    SubmitResponse,
    human_command,
    parse_command,
)
from didlink.profile.folder import Profile
from didlink.profile.ice_settings import check_env
from didlink.words.output import say
from identity.invitation import Invitation, InvitationKind, label_problem

SCREEN_GRACE = 2.0
"""Seconds the chat screen may take to put its prompt away after `closed`
(didlink/chat/screen.py)."""

Batch = Callable[[], AbstractContextManager[None]]
Start = Callable[[EventListener, Batch | None], Awaitable[Session]]
"""Starts the session on the agent with the frontend's listener (and batch, for JSON lines)."""


# --- the commands ----------------------------------------------------------------------------


def invite_live(*, label: str | None, lifetime: int, multi_use: bool, jsonl: bool) -> int:
    """`didlink invite` without --card; returns the exit code."""
    if multi_use:
        raise UserError("a live invitation connects once: --multi-use is only for cards")
    problem = None if label is None else label_problem(label)
    if problem:
        raise UserError(f"cannot make the invitation: {problem}")
    timeouts = timeouts_from_env()  # bad settings are user errors, before anything starts
    check_env()
    history, files = history_requested(), files_policy()
    profile = Profile.from_env()
    key = profile.unlock()
    with profile.open_store() as store:
        agent = Agent(profile=profile, key=key, store=store, timeouts=timeouts)
        agent.ice = agent.connection_ice()
        return run(
            _serve(
                agent,
                jsonl=jsonl,
                start=lambda listen, batch: agent.invite(
                    label=label,
                    lifetime=lifetime,
                    history=history,
                    files=files,
                    on_event=listen,
                    batch=batch,
                ),
            )
        )


def chat_live(target: str, *, lifetime: int, jsonl: bool, relay: bool = True) -> int:
    """`didlink chat CONTACT`: by rendezvous through the relays when it can be (no token),
    else (or not `relay`) a reconnect token for a known contact; returns the exit code."""
    timeouts = timeouts_from_env()
    check_env()
    history, files = history_requested(), files_policy()
    profile = Profile.from_env()
    profile.did()  # no identity: a clear error before anything else
    with profile.open_store() as store:
        contact = store.find_contact(target)  # an unknown contact: before the passphrase
        key = profile.unlock()
        agent = Agent(profile=profile, key=key, store=store, timeouts=timeouts)
        agent.ice = agent.connection_ice()
        return run(
            _serve(
                agent,
                jsonl=jsonl,
                start=lambda listen, batch: agent.chat(
                    contact.did,
                    relay=relay,
                    lifetime=lifetime,
                    history=history,
                    files=files,
                    on_event=listen,
                    batch=batch,
                ),
            )
        )


def accept_live(
    invitation: Invitation, *, jsonl: bool, label: str | None = None, no_relay: bool = False
) -> int:
    """`didlink accept TOKEN` for a live or reconnect invitation (decoded); the exit code.

    `label`: the name our response suggests to the inviter (a first contact only; a reconnect's
    response carries none: the inviter knows us already). The invitation is checked before the
    passphrase is asked for, and burnt only once the identity is unlocked (a mistyped
    passphrase is free). With relays configured and an invitation that carries a reach, the
    response also goes back by relay, unless `no_relay`."""
    if invitation.kind is InvitationKind.RECONNECT:
        label = None
    problem = None if label is None else label_problem(label)
    if problem:  # before the passphrase is asked for
        raise UserError(f"cannot answer the invitation: label: {problem}")
    timeouts = timeouts_from_env()
    check_env()
    history, files = history_requested(), files_policy()
    profile = Profile.from_env()
    own_did = profile.did()
    with profile.open_store() as store:
        check_invitation(invitation, store=store, own_did=own_did)
        key = profile.unlock()
        agent = Agent(profile=profile, key=key, store=store, timeouts=timeouts)
        agent.ice = agent.connection_ice()  # a relay-only profile without TURN: before burning
        return run(
            _serve(
                agent,
                jsonl=jsonl,
                start=lambda listen, batch: agent.accept(
                    invitation,
                    label=label,
                    history=history,
                    files=files,
                    relay_response=not no_relay,
                    on_event=listen,
                    batch=batch,
                ),
            )
        )


def exit_with(code: int) -> None:
    """End the click command with `code` (0 returns normally)."""
    if code:
        click.get_current_context().exit(code)


# --- one session -----------------------------------------------------------------------------


def _renderer(jsonl: bool, relay_host: str | None) -> EventSink:
    if jsonl:
        return JsonlSink()
    if chat_ui.wanted():  # a terminal: the chat screen
        return ChatScreen(relay_host=relay_host)
    return HumanSink(relay_host=relay_host)


def _listener(renderer: EventSink) -> EventListener:
    """The session's events, rendered: each one as its `--jsonl` event (name and fields)."""

    def listen(event: Event) -> None:
        if isinstance(event, SessionWarning):
            renderer.warn(event.message)
            return
        spelled = event_fields(event)
        if spelled is not None:
            renderer.emit(spelled[0], **spelled[1])

    return listen


async def _serve(agent: Agent, *, jsonl: bool, start: Start) -> int:
    """Start the session, render its events and feed it the user's input; the exit code."""
    turn = agent.ice.turn if agent.ice is not None else None
    renderer = _renderer(jsonl, turn.parsed.host if turn is not None else None)
    batch = renderer.held if isinstance(renderer, JsonlSink) else None
    session = await start(_listener(renderer), batch)
    pump = asyncio.create_task(_pump(session, jsonl=jsonl, renderer=renderer))
    _settle_garbage_collector()
    try:
        await session.wait_closed()
    finally:
        await _stop_pump(pump, screen=isinstance(renderer, ChatScreen))
    await agent.close()
    return 1 if session.exit_code is None else session.exit_code


class SessionCommands:
    """A session as the chat screen drives it (chat_ui.Commands): commands -> Session calls."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def expecting(self) -> Expecting:
        return self._session.expecting

    def handle(self, command: Command) -> None:
        give(self._session, command)

    def transfers_in_progress(self) -> list[TransferInProgress]:
        return self._session.transfers_in_progress()


def give(session: Session, command: Command) -> None:
    """Hand one command (a JSON line, a typed line) to the session: one of its methods."""
    if isinstance(command, SendText):
        session.post(command.text, ref=command.ref)
    elif isinstance(command, SendFile):
        session.send_file(command.path)
    elif isinstance(command, SubmitResponse):
        session.submit_response(command.token)
    elif isinstance(command, ConfirmSas):
        session.confirm_sas()
    elif isinstance(command, RejectSas):
        session.reject_sas()
    elif isinstance(command, AcceptFile):
        session.accept_file(command.id)
    elif isinstance(command, RefuseFile):
        session.refuse_file(command.id)
    elif isinstance(command, Quit):
        session.quit(wait_for_files=command.wait_for_files)


def _error(renderer: EventSink, message: str) -> None:
    """An `error` event of the frontend's own (a command it could not read), as the session
    writes its own."""
    renderer.emit("error", message=" ".join(message.split()))


async def _pump(session: Session, *, jsonl: bool, renderer: EventSink) -> None:
    """stdin lines -> commands -> session, until the end of input (a quit) or cancellation."""
    if isinstance(renderer, ChatScreen):
        await renderer.run(SessionCommands(session))
        return
    ended = asyncio.Event()

    def on_lines(lines: list[str | None]) -> None:
        session.begin_commands()  # what they queue leaves together, at the end
        try:
            for line in lines:
                if line is None:
                    session.quit()
                    ended.set()
                    return
                try:
                    command = (
                        parse_command(line) if jsonl else human_command(line, session.expecting)
                    )
                except BadCommand as exc:
                    _error(renderer, str(exc))
                    continue
                if command is not None:
                    give(session, command)
        finally:
            session.end_commands()

    reader = LineReader(on_lines)
    guard = None  # the line mode: Ctrl-C during a transfer warns first (didlink/cli/interrupt.py)
    if not jsonl:
        guard = InterruptGuard(running=session.transfers_in_progress, tell=_tell_interrupted)
        guard.install()
    try:
        await ended.wait()
    finally:
        reader.close()
        if guard is not None:
            guard.remove()


def _tell_interrupted(text: str) -> None:
    say(text, err=True, fg="yellow", bold=True)


async def _stop_pump(pump: asyncio.Task[None], *, screen: bool) -> None:
    """End the command pump, and wait until it has ended.

    The chat screen ends its own input loop at `closed` (its prompt erased, the terminal set
    back) and is given `SCREEN_GRACE` seconds for it; the line readers are cancelled. Either
    way the pump has ended before the process goes on to exit, rather than being cancelled
    with whatever was left on the event loop.
    """
    if screen:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            async with asyncio.timeout(SCREEN_GRACE):
                await asyncio.shield(pump)
    pump.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await pump


def _settle_garbage_collector() -> None:
    """Collect once, then freeze what start-up made (modules, the store, the agent, aiortc).

    The cyclic collector otherwise rescans those long-lived objects in every generation-1
    and -2 pass: a pass then takes 0.5-1.5 ms (24 ms for a full one) in the middle of the
    connection or of a message, wherever the allocation count happens to trigger it.
    Frozen objects are never collected; start-up leaves nothing that should be.
    """
    gc.collect()
    gc.freeze()
