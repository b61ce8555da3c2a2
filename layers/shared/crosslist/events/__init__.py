"""Domain events: recorded in the transaction of the change (the outbox), delivered after it commits."""
