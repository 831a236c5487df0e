"""Dispatch: every approved target published on time, once, whatever fails (DESIGN §5).

A target lives through these stages, one module each, in this order:

1. claim.py: the dispatcher claims due `waiting` targets in batches, each `queued` (or `held`
   when frozen or its account is not connected), also when it falls due before the next run,
   and on commit queues one publish_targets task per group of targets, to start at their time.
   A post becomes publishing when its first target is queued.
2. start.py: the task claims its group's rows again (`sending`), re-checks freeze, account and
   approved content of each under their locks, and records PublishAttempts.
3. send.py: publish_targets calls the channel for each target outside any transaction, and reads
   what it answered (or raised) as the try's outcome; lanes.py makes a group's sends at the same
   time, each account's in order, within caps per worker, per host and per account.
4. outcome.py: every outcome of the group is stored in one transaction: `published`, `waiting`
   again (a retry, due later), `failed`, or `held`. An unknown outcome (timeout after sending)
   sets needs_reconcile: the next try asks the network before it sends.
5. sweep.py: targets that stopped moving go on again: the sweeper returns targets whose worker
   or message was lost, a reconnected account's held targets wait again, and a person decides a
   target that reconcile could not settle.

common.py holds what several stages share: the log line, why a target is held, the active
freezes, the alert, and settling a post, which becomes published, partially published or failed
when every target is final. Freezes' services and reads are in publishing/freezes.py.

Lock order, everywhere: posts before their targets, then accounts, so these transactions never
deadlock (recording an audit event takes no lock: audit/sealer.py).
"""
