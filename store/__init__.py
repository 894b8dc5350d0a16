"""The only code that touches Azure Tables and Queues: callouts, resets, pickups, audit, the work queue."""
