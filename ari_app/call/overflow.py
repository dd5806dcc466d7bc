"""A call the ACD sent to a partner centre (an `[[overflow]]` rule with a dial string): what is
rung, bridged and recorded. Pure, like the machine that keeps one of these per attempt.

The caller stays in the app all along: the partner is rung on a new leg (it enters our Stasis
app, as agencies do) while the caller hears the hold prompt and music; if it answers, it joins
the call's bridge, so the call stays recorded and in the records; if it does not (no answer,
busy, unreachable), the caller goes back into our queue at their place, never hung up on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ari_app.call.commands import BridgePartner, Command, DialPartner
from db.events import Facts, OverflowOutcome
from queues.config import OverflowTarget


@dataclass
class PartnerAttempt:
    """One overflow of a call to a partner centre, from the ACD's decision to its outcome."""

    target: OverflowTarget  # number:DIAL
    rule: str  # the OverflowCondition that held
    channel_id: str  # the partner's leg
    answered: bool = False

    @property
    def dial(self) -> str:
        return self.target.value

    def ring(self) -> list[Command]:
        return [DialPartner(self.dial, self.channel_id)]

    def on_answer(self) -> list[Command]:
        self.answered = True
        return [
            BridgePartner(self.channel_id),
            Facts.overflow_outcome(self.dial, OverflowOutcome.ANSWERED, rule=self.rule),
        ]

    def on_failure(self, cause: str) -> list[Command]:
        """Not answered: the record; the machine puts the caller back in line."""
        return [
            Facts.overflow_outcome(
                self.dial, OverflowOutcome.FAILED, rule=self.rule, cause=cause or None
            )
        ]
