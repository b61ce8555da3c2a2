"""Sync rules: per user, marketplace and kind (listings, orders), whether and how often a sync or an
orders import is queued for them.

`rules` says when a rule is due (pure), `store` keeps the rules in PostgreSQL, `scheduler` runs one
tick of the scheduler function (every minute), `service` and `schemas` are the `/sync-rules` API.
"""
