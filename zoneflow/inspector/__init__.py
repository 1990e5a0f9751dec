"""The inspector: every target's health, an alarm within a second of a failure,
recovery of what a target missed when it comes back, and maintenance.

``zoneflow inspector`` (and ``zoneflow all-in-one``) runs
:class:`~zoneflow.inspector.daemon.Inspector`: a DNS health check of every
target every ``[inspector] interval`` (:mod:`.probe`), whose results each
target's :class:`~zoneflow.inspector.watch.Watch` turns into DOWN and UP.
What a change of health does is central's (zoneflow.central.health): this
package sits above central in the layers, as an entry point does, because
a target's return posts recovery jobs, which only central decides.
See doc/operations.md.
"""
