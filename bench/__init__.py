"""On-demand benchmark of crosslist: `python -m bench` (or `make bench`) prints figures, asserts nothing.

Sections:
- cold start: importing each function's module in a fresh interpreter (median of 3), and how much of
  SQLAlchemy it drags in (the WebSocket handlers must load none of it);
- core loop: U users publish P products of K photos each at once through the devstack (real HTTP,
  real WebSockets, the SQS trigger, the plugin simulator), until every job has finished;
- memory: the resident size of every function's worker processes after the loop;
- flood: on its own devstack, one user's job alone, then right after another user's tab sent N messages
  (`--flood N`) as fast as it could, and what the flooder got back (throttles, rate_limited, errors);
- engine: the event-driven job engine (issue 7) next to the figures measured before it: backend time per
  step, billed process_job time per publish with pacing off and on, the Lambda capacity 100 users need,
  DynamoDB and SQS requests per command, $ per 1 000 publishes, and 50 users x 10 jobs (none lost or
  duplicated, each lane in priority order); see bench/engine.py;
- marketplaces: U users connect the fake eBay and Etsy and publish P products on both at once (job time,
  calls and billed process_job time per publish), then sales on eBay one after another: from the orders
  import's start to the Etsy listing delisted, and the worst case with the default sync rules; see
  bench/marketplaces.py;
- bulk: a 200-product eBay batch publish in bulk calls next to the same with bulk calls off (calls per product,
  wall time), and a 50-product Etsy batch against the fake Etsy's enforced per-second budget (calls per second,
  429s); see bench/bulk.py;
- imports: one seller's seeded shops (500 eBay listings, 100 of them made on ebay.com, 200 Etsy, 300 Vinted) imported
  at once, Vinted paced like a person: wall time, calls and process_job invocations per listing, duplicates, the
  matches' precision and recall against the truth, then a second import that must make nothing
  (`--import-size small` for a smoke run); see bench/imports.py;
- cost: what the deployed stack costs a month while idle and per 1 000 jobs, for each database profile (an
  estimate from AWS's list prices and the engine section's counts, printed, not measured); see bench/deploy_cost.py.

Every section's figures also go to bench/results.json, one document (see bench/results.py): a run
replaces the sections it measured there and keeps the others (`--only X` updates X alone).

Everything it starts (PostgreSQL, moto, the gateways, the worker processes, temp dirs) is stopped and
removed before it exits.
"""
