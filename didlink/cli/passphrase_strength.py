"""How hard a new passphrase is to guess: zxcvbn's estimate (Dropbox's algorithm, the Python port).

zxcvbn scores a passphrase 0-4 from the guesses an attacker who knows common passwords, words,
names, keyboard patterns, dates and l33t substitutions would need; its feedback says why a
passphrase is weak and what helps. Below `GOOD_SCORE` (3: "safely unguessable" against an
offline attack on a slow hash) we warn and ask for confirmation (didlink/cli/passphrase.py).

zxcvbn refuses inputs over 72 characters (its matching is super-linear); a longer passphrase is
judged on its first 72, which can only underestimate it. zxcvbn is imported only here, by the
commands that choose a passphrase.
"""

from __future__ import annotations

from dataclasses import dataclass

GOOD_SCORE = 3
ESTIMATED_CHARS = 72
USER_INPUTS = ("didlink", "did:key", "passphrase", "password")
"""Words an attacker tries first against a didlink keystore."""


@dataclass(frozen=True)
class Strength:
    """zxcvbn's score (0-4) and its feedback: why the passphrase is weak, and what would help."""

    score: int
    warning: str
    suggestions: tuple[str, ...]

    @property
    def weak(self) -> bool:
        return self.score < GOOD_SCORE

    def advice(self) -> str:
        """One line: the warning (or a generic one) and the suggestions."""
        reason = self.warning or "It would be easy to guess."
        return " ".join((reason, *self.suggestions))


def estimate(passphrase: str) -> Strength:
    """zxcvbn's estimate of `passphrase` (its first 72 characters)."""
    from zxcvbn import zxcvbn  # late: only the commands that choose a passphrase load it

    result = zxcvbn(passphrase[:ESTIMATED_CHARS], user_inputs=list(USER_INPUTS))
    feedback = result.get("feedback") or {}
    return Strength(
        score=int(result["score"]),
        warning=str(feedback.get("warning") or ""),
        suggestions=tuple(str(s) for s in feedback.get("suggestions") or ()),
    )
