"""Around the conductors' engines: the shared executor, the listeners that follow a
run (progress, metrics) and the outbox relay. Jobs themselves are zoneflow.jobs; the
engine TaskFlow loads is zoneflow.taskflow_adapter.engine."""
