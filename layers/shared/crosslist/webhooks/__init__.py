"""Signed outbound webhooks: the events a user subscribed to, POSTed to their own backend, signed as Standard
Webhooks sign them (https://www.standardwebhooks.com), retried for about a day.

- `signing`: sign and verify (pure functions);
- `urls`: where a webhook may go (https, public addresses only), checked when saved and at every connection;
- `endpoints`: a user's endpoint (PUT, GET, DELETE /webhooks), its delivery log, the test event;
- `fan_out`: the dispatcher's hook that turns events into deliveries (one row and one SQS message each);
- `delivery`: the SQS consumer that POSTs them and retries on a backoff;
- `sending`: one POST, to checked addresses only, within a few seconds whatever the endpoint does.

Nothing of the job side imports this package: the composition root (crosslist.runtime) hands the hook to the
dispatcher.
"""
