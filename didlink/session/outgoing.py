"""What the user gives to send, from the first command to the session's end.

Theory of operation (DESIGN.md "Messaging" 3, specs/cli-jsonl.md sections 4b and 5)
-----------------------------------------------------------------------------------
`give` checks a `send` / `send_file` command (a text must fit a `Text` frame, a file must be
readable and its name sendable; a problem is one `error` event) and routes what it gives:

- a text, once the peer is known (`Delivery.bound`), goes to the persistent outbox at once
  (didlink/session/delivery.py) and into the channel too if the session is verified;
- anything else waits here, in memory and in the order given, until the session can take it:
  `release` routes it all again when the peer becomes known (texts move to the outbox) and
  when the session is verified (files go to didlink/session/transfers.py);
- what is still held when the session ends is reported as not sent (`warn_unsent`): texts
  live only in memory before the peer is known, and files are never kept across sessions.

Whether the session is verified and its transfers are the node's (`verified`, `transfers`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from didlink.errors import UserError
from didlink.session.commands import EventSink, SendFile, SendText
from didlink.session.delivery import Delivery
from didlink.session.files import OutgoingFile
from didlink.session.transfers import Transfers
from messaging.frames import check_text


class Outgoing:
    """The texts and files the user gives to send: checked, then held, stored or sent."""

    def __init__(
        self,
        *,
        sink: EventSink,
        delivery: Delivery,
        verified: Callable[[], bool],
        transfers: Callable[[], Transfers],
        error: Callable[[str], None],
    ) -> None:
        self._sink = sink
        self._delivery = delivery
        self._verified = verified  # both users confirmed the SAS (the gate is open)
        self._transfers = transfers  # the session's file transfers (once verified)
        self._error = error  # reports a problem as an `error` event
        self._held: list[SendText | OutgoingFile] = []  # in memory: files, texts before a peer

    def give(self, command: SendText | SendFile) -> None:
        """Check one `send` / `send_file` command and route what it gives (or an `error`)."""
        if isinstance(command, SendText):
            try:
                check_text(command.text)  # what `Text` checks, in one line
            except ValueError as exc:
                self._error(f"cannot send this message: {exc}")
                return
            self._route(command)
        else:
            try:  # hashed later, in a thread, by its transfer (didlink/session/transfers.py)
                outgoing = OutgoingFile(Path(command.path).expanduser(), hash_now=False)
            except UserError as exc:
                self._error(str(exc))
                return
            try:
                outgoing.check_name()
            except UserError as exc:
                outgoing.close()
                self._error(str(exc))
                return
            self._route(outgoing)

    def _route(self, item: SendText | OutgoingFile, *, typed: bool = True) -> None:
        """`typed`: given just now (not released): a text that waits says so (`queued`)."""
        if isinstance(item, SendText) and self._delivery.bound:
            mid = self._delivery.add(item.text, ref=item.ref)
            if self._verified():
                self._delivery.send(mid, item.text, new=True)  # its first transmission
            elif typed:
                self._delivery.report_queued((mid, item.text))
        elif not self._verified():
            self._held.append(item)
        elif isinstance(item, SendText):  # pragma: no cover - a verified session has a peer
            raise AssertionError("a verified session always has its outbox")
        else:
            self._transfers().send(item)

    def release(self) -> None:
        """The peer became known or the session verified: route every held item again."""
        held, self._held = self._held, []
        for item in held:
            self._route(item, typed=False)

    def discard(self) -> None:
        """Forget every item held, closing the files (the session is ending: not sent)."""
        held, self._held = self._held, []
        for item in held:
            if isinstance(item, OutgoingFile):
                item.close()

    def warn_unsent(self, *, kept: int, peer_did: str) -> None:
        """Tell the user what was given but not sent: `kept` messages wait in the persistent
        outbox, the items held here are dropped."""
        if kept:
            self._sink.warn(
                f"{kept} queued messages were not sent yet: they are kept (encrypted) in the"
                f" outbox and will be sent the next time you connect with {peer_did}."
            )
        if self._held:
            self._sink.warn(
                f"{len(self._held)} queued files or messages were not sent"
                " (files are not kept: send them again next time, or queue them now with"
                " `didlink send CONTACT --file PATH`)."
            )
