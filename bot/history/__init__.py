"""Where the digest history lives: the two implementations of `HistoryStore`.

The port is `bot.domain.history.HistoryStore`. `sqlite.py` keeps it in one SQLite file (one
replica); `configmap/` keeps it in ConfigMaps shared by replicas behind a leader lease. Both
pass the same contract tests (tests/test_history_contract.py).
"""
