"""The Flux domain: kinds and object status (`flux get` parity), fleet views, events, causes and
dependency trees, digests, incidents, rollouts, change health, posture and remediation policy,
the history store's records, and cron schedules.

Nothing here imports a Slack or Kubernetes client (APScheduler only in schedule.py, for cron);
adapters translate to and from it.
"""
