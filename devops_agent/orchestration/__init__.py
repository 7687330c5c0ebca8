"""Running the runs, out of the HTTP layer: the run manager (workers, scheduling, the lease
keeper), intake (alerts to runs), events and their relay between replicas, retention, the
outbox's deliverer, and the service's metrics."""
