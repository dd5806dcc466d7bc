"""Every rule of one 112 call's life, pure: no asyncio, no ARI, no SQL.

- `events.py`: what happens to the call; `commands.py`: what it asks the shell to do;
- `states.py`: the call's and its legs' states; `transitions.py`: where a call may go, as data;
- `machine.py`: `CallMachine.handle(event) -> list[Command]`;
- `failures.py`: what a failed leg or command means; `adoption.py`: calls found after a restart;
- `overflow.py`: a call the ACD sent to a partner centre;
- `callback.py`: a callback to an abandoned caller (the operator first, then the caller), a
  machine of its own (`CallbackMachine`), carried out by ari_app/callback.py.

See docs/architecture.md for how the actor (ari_app/actor.py) carries the commands out.
"""

from ari_app.call.commands import *  # noqa: F403
from ari_app.call.commands import Command as Command
from ari_app.call.events import *  # noqa: F403
from ari_app.call.events import CallEvent as CallEvent
from ari_app.call.machine import CANNOT_SPEAK_PRIORITY as CANNOT_SPEAK_PRIORITY
from ari_app.call.machine import CANNOT_SPEAK_WINDOW as CANNOT_SPEAK_WINDOW
from ari_app.call.machine import GHOST_ANSWER_SECONDS as GHOST_ANSWER_SECONDS
from ari_app.call.machine import IVR_GUARD_SECONDS as IVR_GUARD_SECONDS
from ari_app.call.machine import POSITIONS_SPOKEN as POSITIONS_SPOKEN
from ari_app.call.machine import SCREENED_CATEGORY as SCREENED_CATEGORY
from ari_app.call.machine import CallMachine as CallMachine
from ari_app.call.states import *  # noqa: F403
from ari_app.call.transitions import IllegalTransition as IllegalTransition
