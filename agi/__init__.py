"""FastAGI and AMI around the ARI app: what Asterisk asks or tells outside Stasis().

- `server.AgiServer`: `screen` (caller screening before Stasis, records -> channel variables)
  and `feature` (operator feature codes from the softphone -> the app's operator API).
- `screening`, `features`: the pure rules behind them; `records`: their SQL.
- `fallback.FallbackRecorder`: calls the dialplan fallback took while the app was away, from AMI
  (for the time the whole app was down, db/reconcile.py gives them from Asterisk's own record).
- `cli`: `siaga block`, `siaga unblock`, `siaga blocks`.
"""
