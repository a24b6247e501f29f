"""Staying online: the mailbox served continuously (issue 25 point 6; specs/mailbox.md §16).

Theory of operation
-------------------
`MailboxService.run()` runs until it is cancelled, over one `MailboxRoute` (one relay pool):

- **Listening**: ONE live subscription (not polling) on every relay for the `to` alias keys of
  every contact's session (specs/mailbox.md §8), from the cursor (§10), plus the keys of the
  `WrapHandler`s (wraps of other purposes). Every `REFRESH` seconds the key set is computed
  again; when it changed (a new contact's session, a new epoch) a new subscription opens before
  the old one closes. The cursor moves to the subscription's start once a relay answered it
  (EOSE). Each wrap is opened and kept exactly as `receive` does (`MailboxRoute.take`): kept
  once, forgeries and copies dropped; then what the inbox holds is emitted (texts, delivery
  receipts for ours) and forgotten, so each arrival is emitted once.
- **Publishing**: a second task wraps and publishes what waits - receipts for the texts that
  arrived (at once), texts in the outbox without a wrap or whose wraps no relay accepted yet
  (`MailboxRoute.flush`: also those a send queued while no relay answered) - when woken (a text
  arrived, a relay came up) and every `FLUSH_EVERY` seconds.
- **Relays**: the pool reconnects each relay by itself with capped exponential backoff and
  jitter (transport/nostr_relay.py, §5); its `on_state` callback becomes `RelayState` events.
  Every `REFRESH` seconds the profile's relay list is read again: relays added meanwhile join the
  pool (they send the open subscription's REQ when they connect), relays removed leave it.

The hook for wraps of other purposes (rendezvous offers, first-contact responses): a
`WrapHandler` names the keys it listens to and receives every verified wrap addressed to one of
them (`_dispatch`); the service never opens those itself.

`DaemonLock`: one daemon per profile, an exclusive `flock` on `daemon.lock` (0600) in the profile
folder holding the pid of its owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from didlink.errors import UserError
from didlink.events import MailboxDelivered, MailboxMessage, RelayState
from didlink.mailbox import relays as relay_settings
from didlink.mailbox.display import inbox_events
from didlink.profile.store_file import StoreBusy, StoreError

if TYPE_CHECKING:
    from didlink.mailbox.requests import MessageRequests
    from didlink.mailbox.route import MailboxRoute
    from didlink.mailbox.store import MailboxStore
    from didlink.profile.outbox import Outbox
    from didlink.profile.settings import Settings
    from messaging.alias import AliasPair
    from transport.nostr_event import NostrEvent
    from transport.nostr_relay import Subscription

log = logging.getLogger(__name__)

ServiceEvent = MailboxMessage | MailboxDelivered | RelayState
"""What `MailboxService` (and `Agent.serve`) reports."""

REFRESH = 15.0
"""Seconds between two looks at the key set, the relay list and the inbox."""
FLUSH_EVERY = 30.0
"""Seconds between two attempts to publish what waits (also at once when woken)."""
LOCK_NAME = "daemon.lock"


class WrapHandler(Protocol):
    """Wraps of another purpose than texts and receipts (e.g. rendezvous offers): the service
    also listens to `recipients()` (32-byte x-only keys, read again every `REFRESH` seconds) and
    hands each wrap addressed to one of them to `handle`, unopened (its shape, id and
    signature verified by the relay pool; the handler opens it with `open_wrap`)."""

    def recipients(self) -> Collection[bytes]: ...

    async def handle(self, event: NostrEvent) -> None: ...


class DaemonRunning(UserError):
    """Another daemon holds this profile's lock."""


class DaemonLock:
    """One daemon per profile: `with DaemonLock(folder):` (DaemonRunning if one runs)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> DaemonLock:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise UserError(f"cannot open the daemon's lock file: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _pid_in(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"cannot lock the daemon's lock file: {exc.strerror}") from None
            who = f" (pid {holder})" if holder is not None else ""
            raise DaemonRunning(f"a daemon already runs for this profile{who}") from None
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # releases the lock
            self._fd = None


def _pid_in(fd: int) -> int | None:
    """The pid written in the lock file (anyone could have written it: bounded, digits only)."""
    try:
        raw = os.pread(fd, 16, 0).strip()
    except OSError:
        return None
    if not raw.isdigit() or len(raw) > 10:
        return None
    return int(raw)


class MailboxService:
    """The profile's mailbox, served until cancelled (see the module docstring)."""

    def __init__(
        self,
        *,
        box: MailboxStore,
        outbox: Outbox,
        settings: Settings,
        emit: Callable[[ServiceEvent], None],
        handlers: Sequence[WrapHandler] = (),
        requests: MessageRequests | None = None,
        refresh: float = REFRESH,
        flush_every: float = FLUSH_EVERY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from didlink.mailbox.route import MailboxRoute  # late: nostr-sdk, websockets

        urls = relay_settings.configured(settings)
        if not urls:
            raise UserError("no relay is configured: add one with `didlink relays add URL`")
        self._box = box
        self._settings = settings
        self._emit = emit
        self._handlers = tuple(handlers)
        self._refresh = refresh
        self._flush_every = flush_every
        self._clock = clock
        self._stopping = False
        self._wake = asyncio.Event()
        self._receipts: dict[str, list[bytes]] = defaultdict(list)
        self._route: MailboxRoute = MailboxRoute(
            box, outbox, settings, urls, clock=clock, on_relay_state=self._relay_state
        )
        self._requests = requests
        if requests is not None:  # message requests (specs/first-message.md §6) come in too
            from didlink.mailbox.requests import RequestHandler

            self._handlers += (RequestHandler(requests, self._route),)

    @property
    def relays(self) -> list[str]:
        """The relays in use now."""
        return self._route.pool.urls

    async def run(self) -> None:
        """Serve until cancelled; then every relay connection is closed."""
        try:
            async with self._route:
                try:
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._listen(), name="mailbox listener")
                        group.create_task(self._publish(), name="mailbox publisher")
                finally:
                    self._stopping = True  # (the relays closing now are not news)
        except BaseExceptionGroup as failed:  # one task's error, as itself
            if len(failed.exceptions) == 1:
                raise failed.exceptions[0] from None
            raise

    # -- relays -----------------------------------------------------------------------------

    def _relay_state(self, url: str, up: bool) -> None:
        if self._stopping:
            return
        self._emit(RelayState(url=url, up=up))
        if up:
            self._wake.set()  # what waits for a relay goes now

    async def _follow_relay_list(self) -> None:
        """Relays added to the profile meanwhile join the pool; removed ones leave it."""
        try:
            wanted = relay_settings.configured(self._settings)
        except UserError:
            return  # a damaged list: keep the relays in use
        pool = self._route.pool
        for url in wanted:
            pool.add(url)
        for url in pool.urls:
            if url not in wanted and len(pool.urls) > 1:
                await pool.remove(url)

    # -- listening --------------------------------------------------------------------------

    def _keys(self) -> tuple[dict[bytes, tuple[str, AliasPair]], dict[bytes, WrapHandler]]:
        mailbox = self._route.listening_keys()
        others: dict[bytes, WrapHandler] = {}
        for handler in self._handlers:
            for key in handler.recipients():
                if not isinstance(key, bytes) or len(key) != 32:
                    log.warning("a wrap handler named a key that is not 32 bytes: ignored")
                elif key not in mailbox:
                    others[key] = handler
        return mailbox, others

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        sub: Subscription | None = None
        mailbox: dict[bytes, tuple[str, AliasPair]] = {}
        others: dict[bytes, WrapHandler] = {}
        started, answered = 0, False
        with contextlib.suppress(StoreBusy):  # what an earlier run kept but did not show
            self._show()
        try:
            while True:
                try:
                    await self._follow_relay_list()
                    new_mailbox, new_others = self._keys()
                except StoreBusy as exc:  # another process held the store: try again soon
                    log.warning("%s", exc)
                    new_mailbox, new_others = mailbox, others
                changed = new_mailbox.keys() != mailbox.keys() or new_others.keys() != others.keys()
                if sub is None or changed:
                    old = sub
                    sub, mailbox, others = None, new_mailbox, new_others
                    keys = set(mailbox) | set(others)
                    if keys:  # (none: no contact has a session yet; look again later)
                        started, answered = int(self._clock()), False
                        since = self._route.since()
                        sub = await self._route.pool.subscribe(recipients=keys, since=since)
                    if old is not None:
                        await old.close()
                deadline = loop.time() + self._refresh
                while (left := deadline - loop.time()) > 0:
                    if sub is None:
                        await asyncio.sleep(left)
                        break
                    if not answered and sub.stored_from:
                        with contextlib.suppress(StoreBusy):  # (else: next time round)
                            self._route.mark_fetched(started)
                            answered = True
                    event = await _next(sub, min(left, 1.0))
                    if event is not None:
                        await self._dispatch(event, mailbox, others)
                with contextlib.suppress(StoreBusy):  # (shown at the next round)
                    self._show()
        finally:
            if sub is not None:
                await sub.close()

    async def _dispatch(
        self,
        event: NostrEvent,
        mailbox: dict[bytes, tuple[str, AliasPair]],
        others: dict[bytes, WrapHandler],
    ) -> None:
        from didlink.mailbox.route import Collected
        from transport.nostr_envelope import recipient_of

        handler = others.get(recipient_of(event))
        if handler is not None:
            # The hook: a wrap of another purpose (rendezvous, ...) goes to its handler.
            try:
                await handler.handle(event)
            except Exception as exc:  # one handler's failure must not stop the mailbox
                log.warning("a wrap handler failed: %s", type(exc).__name__)
            return
        done = Collected()
        try:
            self._route.take(event, mailbox, self._receipts, done)
        except StoreError as exc:  # the contact removed meanwhile, the store busy too long:
            log.warning("a wrap was not kept now: %s", exc)  # the next fetch gets it again
            return
        if done.texts or done.delivered:
            with contextlib.suppress(StoreBusy):  # (shown at the next round)
                self._show()
        if self._receipts:
            self._wake.set()

    def _show(self) -> None:
        """Emit what the inbox holds (kept by us or by another process of this profile), then
        forget it: each arrival is emitted once."""
        pending = self._requests.pending() if self._requests is not None else set()
        arrived = inbox_events(self._box, pending)
        for _, item in arrived:
            self._emit(item)
        self._box.forget_shown([seq for seq, _ in arrived])

    # -- publishing -------------------------------------------------------------------------

    async def _publish(self) -> None:
        while True:
            self._wake.clear()
            try:
                if self._receipts:
                    await self._route.send_receipts(self._receipts)
                await self._route.flush_all()
            except StoreError as exc:  # a contact removed meanwhile, busy: the next round goes on
                log.warning("publishing stopped for now: %s", exc)
                self._receipts.clear()  # (a text whose receipt is lost comes again: answered)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_every):
                    await self._wake.wait()


async def _next(sub: Subscription, timeout: float) -> NostrEvent | None:  # noqa: ASYNC109
    """The subscription's next wrap within `timeout` seconds, else None."""
    from transport.errors import RelayError, TransportTimeout

    try:
        return await sub.next(timeout=timeout)
    except TransportTimeout:
        return None
    except RelayError:  # closed under us (the pool is closing): wait for the cancellation
        await asyncio.sleep(timeout)
        return None
