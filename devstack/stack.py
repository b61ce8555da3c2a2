"""The whole system on one machine: PostgreSQL, moto, the fake eBay and Etsy, and the functions of
template.yaml behind a local HTTP API, WebSocket API, SQS trigger and schedules. Everything is read from
template.yaml."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from aiohttp import web

from devstack import fake_ebay, fake_etsy
from devstack.aws import Provisioned, provision
from devstack.console import BrowserVinted, console_routes
from devstack.database import migrate
from devstack.fake_ebay import EBAY_SCOPES, FakeEbay
from devstack.fake_etsy import ETSY_SCOPES, FakeEtsy
from devstack.fake_state import load_state, save_state
from devstack.functions import FunctionSpec, functions_from_template
from devstack.gateway import Cors, HttpRoute, WebSocketApi, http_api, stage_throttling
from devstack.images import demo_photo, demo_png, rehosted_width
from devstack.instances import FunctionPool, Invocation
from devstack.moto_server import MotoServer
from devstack.postgres import Cluster, free_port, start_cluster
from devstack.queue_state import QUEUED_MESSAGES_FILE, restore_queued_messages, save_queued_messages
from devstack.schedules import Schedule, Scheduler, scheduler_event, schedules_from_template
from devstack.sqs_trigger import SqsTrigger
from devstack.template import load_template

logger = logging.getLogger("devstack")
REPO = Path(__file__).resolve().parent.parent
MAX_URL_BYTES = 64 * 1024
LOCAL_STAGE = "local"
WEBHOOKS_KEPT = 50  # the webhooks /__devstack/webhooks shows, newest first
EBAY_RUNAME = "crosslist-devstack"  # the devstack app's RuName at the fake eBay (eBay's redirect_uri is a name)


@dataclass
class StackConfig:
    root: Path = REPO
    host: str = "127.0.0.1"
    http_port: int = 8000
    ws_port: int = 8001
    aws_port: int = 0  # 0: any free port
    # The fake eBay and Etsy: any free port unless given (`crosslist dev up` gives 8010 and 8011).
    ebay_port: int = 0
    etsy_port: int = 0
    database_url: str | None = None  # None: a PostgreSQL cluster kept in .devstack/postgres
    data_dir: Path | None = None
    concurrency: int = 2  # instances per function
    function_log_level: str = "WARNING"  # Powertools log level inside the functions
    schedules: bool = True
    # Vinted calls spaced like a person's (seconds apart): off unless asked, so a demo publish is quick.
    pacing: bool = False
    extra_environment: dict[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.data_dir or self.root / ".devstack"

    @property
    def fakes_dir(self) -> Path:
        """Where the fake marketplaces' state is kept between runs (the plugin simulator's Vinted accounts too)."""
        return self.state_dir / "fakes"


def dev_jwt_secret(state_dir: Path) -> str:
    """The devstack's signing key: generated once per checkout, never committed."""
    given = os.environ.get("CROSSLIST_DEV_JWT_SECRET")
    if given:
        return given
    return _dev_secret(state_dir, "jwt-secret")


def dev_ebay_verification_token(state_dir: Path) -> str:
    """The verification token of the devstack's eBay notification endpoint (64 characters: eBay takes 32 to 80),
    generated once per checkout like the JWT key."""
    return _dev_secret(state_dir, "ebay-verification-token")


def _dev_secret(state_dir: Path, name: str) -> str:
    path = state_dir / name
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class DevStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.template = load_template(config.root / "template.yaml")
        self._cluster: Cluster | None = None
        self._moto: MotoServer | None = None
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="devstack-gateway", daemon=True)
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="invoke")
        self._runners: list[web.AppRunner] = []
        self.pools: dict[str, FunctionPool] = {}
        self.triggers: list[SqsTrigger] = []
        self.scheduler: Scheduler | None = None
        self.schedules: dict[str, Schedule] = {}
        self.websocket_api: WebSocketApi | None = None
        self.provisioned: Provisioned | None = None
        self.ebay = FakeEbay(client_id="crosslist-devstack")
        self.etsy = FakeEtsy(keystring="crosslistdevstackkeystr1")
        # The fake Vinted the console's "browser extension" calls over HTTP (devstack.console), one per user.
        self.browser_vinted = BrowserVinted(config.fakes_dir)
        # What POST /__devstack/webhooks received: a stand-in for the reseller app's own backend (README).
        self.webhooks_received: deque[dict[str, Any]] = deque(maxlen=WEBHOOKS_KEPT)
        self._app_secrets: dict[str, str] = {}  # marketplace -> its OAuth app's secret ARN in moto
        # Set once the previous run's queued messages and fakes are back: only then may stop() save them over
        # the files (a start that failed earlier must not overwrite them with nothing).
        self._queues_restored = False
        self._fakes_restored = False
        self.jwt_secret = ""
        self.database_url = ""
        self.aws_endpoint = ""

    @property
    def cluster(self) -> Cluster | None:
        """The PostgreSQL cluster the devstack started (None when given a DATABASE_URL)."""
        return self._cluster

    @property
    def http_url(self) -> str:
        return f"http://{self.config.host}:{self.config.http_port}"

    def _own_origins(self) -> list[str]:
        """How this HTTP API is reached from this machine (bound to 0.0.0.0, it is seeded as 127.0.0.1)."""
        hosts = dict.fromkeys([self.config.host, "127.0.0.1", "localhost"])
        return [f"http://{host}:{self.config.http_port}" for host in hosts if host != "0.0.0.0"]

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.config.ws_port}"

    # start / stop ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._start_database()
        self._start_aws()
        self._restore_queued_messages()
        self._start_marketplaces()
        self.jwt_secret = dev_jwt_secret(self.config.state_dir)
        specs = self._function_specs()
        base_environment = self._base_environment()
        self.pools = {
            logical_id: FunctionPool(spec, base_environment, self.config.concurrency)
            for logical_id, spec in specs.items()
        }
        self._loop_thread.start()
        asyncio.run_coroutine_threadsafe(self._start_gateways(specs), self._loop).result()
        self._requeue_unfinished_jobs()
        self._start_triggers(specs)
        self._start_schedules()
        logger.info("HTTP API      %s", self.http_url)
        logger.info("WebSocket API %s   (management API: %s/@connections)", self.ws_url, self._management_url())
        logger.info("AWS (moto)    %s", self.aws_endpoint)
        logger.info("eBay (fake)   %s", self.ebay.base_url)
        logger.info("Etsy (fake)   %s", self.etsy.base_url)
        logger.info("PostgreSQL    %s", self.database_url)

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        for trigger in self.triggers:
            trigger.stop()
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._stop_gateways(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=10)
        # Nothing sends or takes messages, nor calls the fakes, any more: what they hold is kept for the next run.
        self._save_queued_messages()
        self._save_marketplaces()
        for pool in self.pools.values():
            pool.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._moto is not None:
            self._moto.stop()
        self.ebay.stop()
        self.etsy.stop()
        if self._cluster is not None:
            self._cluster.stop()
        logger.info("devstack stopped")

    def _start_database(self) -> None:
        url = self.config.database_url
        if url is None:
            self._cluster = start_cluster(self.config.state_dir / "postgres")
            self._cluster.create_database("crosslist")
            url = self._cluster.url("crosslist")
        self.database_url = url
        migrate(url, root=self.config.root)

    def _start_aws(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = self.config.aws_port or free_port()
        self._moto = MotoServer(self.config.host, port, on_sqs_send=self._wake_triggers)
        self._moto.start()
        self.aws_endpoint = f"http://{self.config.host}:{port}"
        self.dynamodb = self._client("dynamodb")
        self.sqs = self._client("sqs")
        self.provisioned = provision(self.config.root / "template.yaml", self.dynamodb, self.sqs, self._client("kms"))

    def _start_marketplaces(self) -> None:
        """The fake eBay and Etsy, and crosslist's app at each (a moto secret, as in AWS) whose redirect URI
        is this HTTP API's callback. The fakes get back the listings and orders of the previous run, but not
        its tokens: credentials a previous run stored are no longer good (nor is the KMS key that sealed
        them), so their users are asked to connect again."""
        for name, fake in self._fakes().items():
            saved = load_state(self._fake_state_file(name))
            if saved is None:
                continue
            try:
                fake.restore(saved)
            except (KeyError, TypeError, ValueError) as unreadable:  # a file of another shape: start empty
                logger.warning("the fake %s's saved state cannot be restored (%r): it starts empty", name, unreadable)
                fake.reset()
        self._fakes_restored = True
        self.ebay.start(self.config.host, self.config.ebay_port)
        self.etsy.start(self.config.host, self.config.etsy_port)
        callback = f"{self._own_origins()[0]}/marketplaces/{{}}/callback"
        self.ebay.redirects[EBAY_RUNAME] = callback.format("ebay")
        # What an operator registers in eBay's and Etsy's developer portals: where they push (crosslist.notifications).
        self.ebay.account_deletion_endpoint = self._notification_url("ebay")
        self.etsy.webhook_url = self._notification_url("etsy")
        apps: dict[str, tuple[FakeEbay | FakeEtsy, str, tuple[str, ...]]] = {
            "ebay": (self.ebay, EBAY_RUNAME, EBAY_SCOPES),
            "etsy": (self.etsy, callback.format("etsy"), ETSY_SCOPES),
        }
        secrets_manager = self._client("secretsmanager")
        for marketplace, (fake, redirect_uri, scopes) in apps.items():
            app = {
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "redirect_uri": redirect_uri,
                "scopes": " ".join(scopes),
            }
            secret = secrets_manager.create_secret(
                Name=f"devstack/{marketplace}-oauth-app", SecretString=json.dumps(app)
            )
            self._app_secrets[marketplace] = secret["ARN"]
        self._ask_to_reconnect()

    def _fakes(self) -> dict[str, FakeEbay | FakeEtsy]:
        return {"ebay": self.ebay, "etsy": self.etsy}

    def _fake_state_file(self, name: str) -> Path:
        return self.config.fakes_dir / f"{name}.json"

    def _save_marketplaces(self) -> None:
        self.browser_vinted.save()  # only the accounts it loaded (or created) in this run
        if not self._fakes_restored:
            return
        for name, fake in self._fakes().items():
            try:
                save_state(self._fake_state_file(name), fake.state())
            except Exception:  # stopping goes on: the next run's fake starts empty, its ids still unique
                logger.exception("could not save the fake %s's state", name)

    def _save_queued_messages(self) -> None:
        if not self._queues_restored or self.provisioned is None:
            return
        try:
            kept = save_queued_messages(self.config.state_dir / QUEUED_MESSAGES_FILE, self.provisioned.queues)
        except Exception:  # stopping goes on: the sweeper still finds the lanes whose timers are lost
            logger.exception("could not save the queued messages")
            return
        if kept:
            logger.info("kept %d queued message(s) (timers, wake-ups) for the next run", kept)

    def _restore_queued_messages(self) -> None:
        """The messages the previous run left in its queues, with what is left of their delays."""
        assert self.provisioned is not None
        path = self.config.state_dir / QUEUED_MESSAGES_FILE
        sent = restore_queued_messages(path, self.sqs, self.provisioned.queues)
        self._queues_restored = True
        if sent:
            logger.info("queued again %d message(s) (timers, wake-ups) the previous run left", sent)

    def _ask_to_reconnect(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.database_url)
        with engine.begin() as connection:
            stale = connection.execute(
                text("UPDATE oauth_credentials SET status = 'needs_reauth' WHERE status = 'active'")
            ).rowcount
        engine.dispose()
        if stale:
            logger.info("%d eBay/Etsy connection(s) from the previous run must be connected again", stale)

    def _notification_url(self, marketplace: str) -> str:
        return f"{self._own_origins()[0]}/notifications/{marketplace}"

    def _marketplace_environment(self) -> dict[str, str]:
        """Where the functions reach eBay and Etsy: the fakes (variables given in the shell still win), and what lets
        the fakes push to this HTTP API: its endpoint and verification token for eBay, Etsy's signing secret."""
        ebay, etsy = self.ebay.base_url, self.etsy.base_url
        return {
            "EBAY_NOTIFICATION_ENDPOINT": self._notification_url("ebay"),
            "EBAY_VERIFICATION_TOKEN": dev_ebay_verification_token(self.config.state_dir),
            "ETSY_WEBHOOKS": "on",
            "ETSY_WEBHOOK_SECRET": self.etsy.webhook_secret,
            "CROSSLIST_EBAY_IDENTITY_API_BASE": ebay,
            "CROSSLIST_EBAY_API_BASE": ebay,
            "CROSSLIST_EBAY_OAUTH_TOKEN_URL": ebay + fake_ebay.TOKEN_PATH,
            "CROSSLIST_EBAY_AUTHORIZE_URL": ebay + fake_ebay.AUTHORIZE_PATH,
            "CROSSLIST_ETSY_API_BASE": etsy + "/v3",
            "CROSSLIST_ETSY_OAUTH_TOKEN_URL": etsy + fake_etsy.TOKEN_PATH,
            "CROSSLIST_ETSY_AUTHORIZE_URL": etsy + fake_etsy.AUTHORIZE_PATH,
        }

    def _requeue_unfinished_jobs(self) -> None:
        """moto keeps queues and tables in memory: the lanes a previous devstack left with work are woken.

        The commands they had in flight are gone with moto's tables; a write among them may have landed,
        so its job checks before sending it again, as after any lost reply.
        """
        from sqlalchemy import create_engine, text

        from crosslist.jobs.queue import LaneWake, SqsJobQueue

        assert self.provisioned is not None
        engine = create_engine(self.database_url)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE marketplace_jobs AS job SET unconfirmed_step = job.current_step FROM job_lanes AS lane"
                    " WHERE lane.in_flight IS NOT NULL AND job.id = (lane.in_flight->>'job_id')::uuid"
                    " AND NOT (lane.in_flight->>'repeatable')::boolean"
                )
            )
            connection.execute(text("UPDATE job_lanes SET in_flight = NULL WHERE in_flight IS NOT NULL"))
            lanes = connection.execute(
                text(
                    "SELECT DISTINCT user_id, marketplace FROM marketplace_jobs"
                    " WHERE status IN ('pending', 'running', 'waiting', 'waiting_for_plugin')"
                )
            ).all()
        engine.dispose()
        queue = SqsJobQueue(self.sqs, self.provisioned.queues["JobsQueue"])
        cause = f"devstack-start:{datetime.now(UTC).timestamp()}"
        queue.wake_many([LaneWake(user_id=user, marketplace=marketplace, cause=cause) for user, marketplace in lanes])
        if lanes:
            logger.info("woke %d lane(s) with unfinished jobs from the previous run", len(lanes))

    def _client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="devstack",
            aws_secret_access_key="devstack",
        )

    def _management_url(self) -> str:
        return f"http://{self.config.host}:{self.config.ws_port}"

    # functions -------------------------------------------------------------------------------------

    def _function_specs(self) -> dict[str, FunctionSpec]:
        assert self.provisioned is not None
        references: dict[str, str] = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
        for name, parameter in self.template.get("Parameters", {}).items():
            references[name] = str(parameter.get("Default", ""))
        references.update(self.provisioned.tables)
        references.update(self.provisioned.queues)
        references.update(self.provisioned.keys)
        references["EbayOAuthSecretArn"] = self._app_secrets["ebay"]
        references["EtsyOAuthSecretArn"] = self._app_secrets["etsy"]
        # Connecting an account ends on this HTTP API's own page (`/`), or on a web app given in the shell.
        references["WebAppOrigins"] = ",".join(filter(None, [*self._own_origins(), os.environ.get("WEB_APP_ORIGINS")]))
        overrides = {
            "WEBSOCKET_ENDPOINT": self._management_url(),
            "DATABASE_URL": self.database_url,
            "DATABASE_SECRET_ARN": "",
            "JWT_ALGORITHM": "HS256",
            "JWT_SECRET": self.jwt_secret,
            "JWT_SECRET_ARN": "",
            "JWT_JWKS_URL": "",
            "POWERTOOLS_LOG_LEVEL": self.config.function_log_level,
            **self._marketplace_environment(),
            **{k: v for k, v in os.environ.items() if k.startswith("CROSSLIST_") and k != "CROSSLIST_DEV_JWT_SECRET"},
            # The devstack's own PostgreSQL has no certificate: the functions talk to it in clear text, which they
            # refuse unless told (crosslist.db.tls). A database given with --database-url keeps what the shell says.
            **({"CROSSLIST_DATABASE_SSLMODE": "disable"} if self._cluster is not None else {}),
            "CROSSLIST_PACING": "on" if self.config.pacing else os.environ.get("CROSSLIST_PACING", "off"),
            # The demo images are served by this HTTP API over plain http on loopback, which products
            # otherwise refuse as image URLs; origins given in the shell are kept.
            "CROSSLIST_DEV_IMAGE_ORIGINS": ",".join(
                filter(None, [*self._own_origins(), os.environ.get("CROSSLIST_DEV_IMAGE_ORIGINS")])
            ),
            # Webhooks may go over plain http to this HTTP API (its /__devstack/webhooks) and to origins given in the
            # shell (e.g. http://127.0.0.1:3000, the app's own backend), which AWS would refuse as private.
            "CROSSLIST_DEV_WEBHOOK_ORIGINS": ",".join(
                filter(None, [*self._own_origins(), os.environ.get("CROSSLIST_DEV_WEBHOOK_ORIGINS")])
            ),
            **self.config.extra_environment,
        }
        return functions_from_template(self.template, self.config.root, references, overrides)

    def _base_environment(self) -> dict[str, str]:
        """What every instance starts from, like Lambda's own variables."""
        kept = ("PATH", "HOME", "LANG", "TZ", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PYTHONPATH")
        return {
            **{k: os.environ[k] for k in kept if k in os.environ},
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "devstack",
            "AWS_SECRET_ACCESS_KEY": "devstack",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }

    async def invoke(self, pool: FunctionPool, event: dict[str, Any]) -> Invocation:
        return await self._loop.run_in_executor(self._executor, pool.invoke, event)

    # gateways --------------------------------------------------------------------------------------

    async def _start_gateways(self, specs: dict[str, FunctionSpec]) -> None:
        routes = [
            HttpRoute(str(properties["Method"]).upper(), str(properties["Path"]), self.pools[logical_id])
            for logical_id, spec in specs.items()
            for properties in spec.events_of_type("HttpApi").values()
        ]
        configurations = [
            r["Properties"]["CorsConfiguration"]
            for r in self.template["Resources"].values()
            if r["Type"] == "AWS::Serverless::HttpApi" and r.get("Properties", {}).get("CorsConfiguration")
        ]
        cors = Cors.of(configurations[0]) if configurations else None
        console = console_routes(
            root=self.config.root,
            jwt_secret=lambda: self.jwt_secret,
            ws_url=lambda: self.ws_url,
            vinted=self.browser_vinted,
        )
        await self._serve(
            http_api(routes, self.invoke, cors, [*self._devstack_routes(), *console]), self.config.http_port
        )

        api = next(r for r in self.template["Resources"].values() if _is_websocket_api(r))
        stages = [r for r in self.template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
        self.websocket_api = WebSocketApi(
            self._websocket_routes(),
            api["Properties"]["RouteSelectionExpression"],
            self.invoke,
            LOCAL_STAGE,
            stage_throttling(stages[0] if stages else {}, self.template.get("Parameters", {})),
        )
        await self._serve(self.websocket_api.application(), self.config.ws_port)

    async def _serve(self, app: web.Application, port: int) -> None:
        # Long URLs reach the handlers, which answer them as any request (aiohttp's own 8 KB limit would answer
        # a text/plain 400 no route documents).
        runner = web.AppRunner(app, access_log=None, max_line_size=MAX_URL_BYTES, max_field_size=MAX_URL_BYTES)
        await runner.setup()
        await web.TCPSite(runner, self.config.host, port).start()
        self._runners.append(runner)

    async def _stop_gateways(self) -> None:
        if self.websocket_api is not None:
            await self.websocket_api.close_all()
        for runner in self._runners:
            await runner.cleanup()

    def _websocket_routes(self) -> dict[str, FunctionPool]:
        """Route key → function, following Route → Integration → function ARN in the template."""
        resources = self.template["Resources"]
        routes: dict[str, FunctionPool] = {}
        for resource in resources.values():
            if resource["Type"] != "AWS::ApiGatewayV2::Route":
                continue
            target = resource["Properties"]["Target"]  # {"Fn::Sub": "integrations/${SomeIntegration}"} or a Join
            integration_id = _referenced_integration(target, resources)
            uri = resources[integration_id]["Properties"]["IntegrationUri"]
            function_id = _referenced_function(uri, resources)
            routes[resource["Properties"]["RouteKey"]] = self.pools[function_id]
        return routes

    def _devstack_routes(self) -> web.RouteTableDef:
        routes = web.RouteTableDef()

        @routes.get("/__devstack/images/{number:\\d+}.png")
        async def image(request: web.Request) -> web.Response:
            return web.Response(body=demo_png(int(request.match_info["number"])), content_type="image/png")

        @routes.get("/__devstack/images/{number:\\d+}.jpg")
        async def rehosted_image(request: web.Request) -> web.Response:
            # The same picture as a marketplace re-hosts it: `w` pixels wide, re-compressed.
            width = rehosted_width(request.query.get("w", ""))
            if isinstance(width, str):
                return web.json_response({"message": width}, status=400)
            body = demo_photo(int(request.match_info["number"]), width=width, fmt="jpeg")
            return web.Response(body=body, content_type="image/jpeg")

        @routes.post("/__devstack/schedules/{name}")
        async def fire(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            try:
                result = await self._loop.run_in_executor(self._executor, self.fire, name)
            except ValueError as unknown:
                return web.json_response({"message": str(unknown)}, status=404)
            return web.json_response({"schedule": name, "result": result})

        @routes.get("/")
        async def web_app(request: web.Request) -> web.Response:
            # Where connecting an eBay or Etsy account ends locally (a web app's page would complete it).
            query = dict(request.query)
            if "state" in query and "marketplace" in query:
                marketplace = query["marketplace"]
                return web.json_response(
                    {
                        **query,
                        "next": f"POST /marketplaces/{marketplace}/connect with this code and state as JSON and"
                        " your token (or run `crosslist dev connect`)"
                        if "code" in query
                        else f"connecting {marketplace} did not finish: {query.get('error')}",
                    }
                )
            return web.json_response({"devstack": {"http": self.http_url, "websocket": self.ws_url}})

        @routes.post("/__devstack/webhooks")
        async def receive_webhook(request: web.Request) -> web.Response:
            # Answers 204 to anything: the signature is the receiver's to check (crosslist.webhooks.signing.verify).
            body = await request.text()
            headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("webhook-")}
            self.webhooks_received.appendleft(
                {"received_at": datetime.now(UTC).isoformat(), "headers": headers, "body": body}
            )
            logger.info("webhook received  %s %s", headers.get("webhook-id"), body[:200])
            return web.Response(status=204)

        @routes.get("/__devstack/webhooks")
        async def webhooks_received(_: web.Request) -> web.Response:
            return web.json_response({"received": list(self.webhooks_received)})

        @routes.get("/__devstack/health")
        async def health(_: web.Request) -> web.Response:
            return web.json_response(
                {
                    "functions": sorted(self.pools),
                    "schedules": self._schedule_names(),
                    # Where `crosslist dev sell` finds the fakes' control route (devstack.fake_http.SELL_PATH).
                    "fakes": {name: fake.base_url for name, fake in self._fakes().items()},
                }
            )

        return routes

    # triggers and schedules ------------------------------------------------------------------------

    def _start_triggers(self, specs: dict[str, FunctionSpec]) -> None:
        assert self.provisioned is not None
        for logical_id, spec in specs.items():
            for properties in spec.events_of_type("SQS").values():
                queue_id = properties["Queue"]["Fn::GetAtt"][0]
                trigger = SqsTrigger(
                    self.pools[logical_id],
                    self.sqs,
                    self.provisioned.queues[queue_id],
                    self.provisioned.queue_arns[queue_id],
                    batch_size=int(properties.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                    pollers=self.config.concurrency,
                )
                trigger.start()
                self.triggers.append(trigger)

    def _wake_triggers(self, queue_name: str) -> None:
        """A message was sent to the queue (moto's server thread tells): its triggers poll now."""
        for trigger in tuple(self.triggers):
            if trigger.queue_name == queue_name:
                trigger.wake()

    def _start_schedules(self) -> None:
        self.schedules = {schedule.name: schedule for schedule in schedules_from_template(self.template)}
        self.scheduler = Scheduler(list(self.schedules.values()), self._run_schedule)
        if self.config.schedules:
            self.scheduler.start()

    def _schedule_names(self) -> list[str]:
        return sorted(self.schedules)

    def _run_schedule(self, schedule: Schedule, event: dict[str, Any]) -> Any:
        pool = self.pools[schedule.function]
        invocation = pool.invoke(event)
        logger.info(
            "%-13s schedule %s → %s (%.0f ms)", pool.spec.name, schedule.name, invocation.result, invocation.duration_ms
        )
        return invocation.result

    def fire(self, name: str) -> Any:
        """Fire a schedule now, as EventBridge Scheduler would; returns what its function answered."""
        schedule = self.schedules.get(name)
        if schedule is None:
            raise ValueError(f"no schedule {name!r}; schedules: {', '.join(sorted(self.schedules))}")
        return self._run_schedule(schedule, scheduler_event(schedule, datetime.now(UTC)))


def _is_websocket_api(resource: dict[str, Any]) -> bool:
    return bool(
        resource["Type"] == "AWS::ApiGatewayV2::Api" and resource["Properties"].get("ProtocolType") == "WEBSOCKET"
    )


def _referenced_integration(target: Any, resources: dict[str, Any]) -> str:
    text = str(target)
    matches = [name for name, r in resources.items() if r["Type"] == "AWS::ApiGatewayV2::Integration" and name in text]
    if len(matches) != 1:
        raise ValueError(f"cannot tell which integration route target {target!r} names")
    return matches[0]


def _referenced_function(uri: Any, resources: dict[str, Any]) -> str:
    text = str(uri)
    matches = [name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function" and f"{name}." in text]
    if len(matches) != 1:
        raise ValueError(f"cannot tell which function integration URI {uri!r} names")
    return matches[0]
