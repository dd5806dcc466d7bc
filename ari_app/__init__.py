"""The Siaga ARI application: the typed ARI client (`ari/`), one reader with ordered dispatch
(`router.py`), one actor per call (`actor.py`, carrying commands out through `executors.py`)
around the pure call and IVR machines (`call/`, `ivr.py`), and the wiring to the ACD core and
the records (`app.py`)."""
