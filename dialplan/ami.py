"""What the AMI user may do: read the events the fallback recorder (agi/fallback.py) follows,
and nothing else.

The user gets no write class: `system` allows ModuleLoad (and Originate of System() or Exec()),
`originate` any call into any application, `command` the whole CLI; with any of them the AMI
password is root inside the Asterisk root. Without `system` Asterisk also refuses the `Filter`
action, so manager.conf narrows the user's events instead (`eventfilter`, matched by name).
"""

from __future__ import annotations

# Event classes (manager.conf `read=`): Hangup and DialEnd are `call`, the queue's events
# (QueueCallerJoin, AgentCalled...) `agent`, the dialplan's UserEvent `user`.
READ_CLASSES = ("call", "agent", "user")

# The only events the recorder reads. Without a filter AMI sends a session every event of its
# classes: dozens per call (Newchannel, Newstate, DialBegin...).
EVENTS = (
    "UserEvent",
    "Hangup",
    "DialEnd",
    "QueueCallerJoin",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
)


def event_filters(events: tuple[str, ...] = EVENTS) -> str:
    """manager.conf lines that let only `events` through to the user's sessions."""
    return "\n".join(f"eventfilter(action(include),name({event})) =" for event in events)
