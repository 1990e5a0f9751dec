"""The producer: periodic work posted as jobs, its zones shared out in shards.

``zoneflow producer`` (and a thread of ``zoneflow all-in-one``) runs three
passes, each at its own ``[producer]`` interval, over the zones of the
shards it holds:

- recovery (recovery.py): zones in ERROR, or PENDING with no job in flight
  for longer than ``pending_age``, get recover-zone jobs;
- audit (audit.py): every target is asked for the SOA of every zone it
  should serve (dns/soa_probe.py, many questions in flight); a zone missing
  or behind there is recovered, a deleted zone still served is removed, and
  what was found is recorded in the zone's per-target rows;
- purge (purge.py): deleted zones and ended jobs past their retention.

Zones are split into ``[producer] shards`` by a hash of their id
(shards.py); the running producers share the shards out through ZooKeeper
(kazoo's SetPartitioner), so each shard is worked by one producer at a time
and a producer that joins or dies moves shards within seconds.

The producer decides nothing about zones itself: it reads through central
and posts through central (central/upkeep.py), which picks the job kinds
and writes them to the outbox, as a change from the API does.
"""
