"""``python -m sync.emulator`` / ``presence-sync emulator``: run the local tenant in the foreground.

Exit codes: 0 after SIGINT/SIGTERM, 2 for bad arguments, a port in use, unreadable fixtures or
an unusable state directory (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from .faults.layer import FaultConfig
from .faults.refuse import REFUSABLE_SHAPES
from .model.clock import Clock
from .model.fixtures import FixturesError, load_world
from .model.tenant import World
from .server import EmulatorServer
from .state import Limits

__all__ = ["build_parser", "main"]

PROG = "presence-sync emulator" if Path(sys.argv[0]).name == "presence-sync" else "python -m sync.emulator"
CONTROL_PATHS = (
    "GET  /_emulator/info", "GET  /_emulator/stats  (POST /_emulator/stats/reset)",
    "POST /_emulator/devicecode/approve {user_code, upn}  (decline | expire | slow_down; GET lists codes)",
    "GET|POST /_emulator/faults  /_emulator/clock  /_emulator/limits",
    "GET  /_emulator/presence-log?tenant=&since=&until=&ids=   GET /_emulator/presence?tenant=&ids=&at=",
    "POST /_emulator/directory  /_emulator/lists/items  /_emulator/tokens/revoke  /_emulator/tokens/expire",
    "GET  /_emulator/lists/writes?tenant=&list=   GET /_emulator/presence-reads?tenant=  (POST .../reset)",
    "POST /_emulator/apps {tenant, client_id, admin_consented?, permissions?}   POST /_emulator/lists/columns",
    "GET  /_emulator/library?tenant=&path=",
    "POST /_emulator/reset",
)


class _Stop(Exception):
    """SIGTERM or SIGINT, re-raised by uvicorn once it has shut down (or raised before it took over)."""


def _on_signal(signum: int, frame: object) -> None:
    raise _Stop


class UsageError(Exception):
    """Bad arguments or an environment we cannot run in: one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be positive")
        return value
    parse.__name__ = kind.__name__
    return parse


def _burst(text: str) -> tuple[int, float | None]:
    count, _, retry = text.partition(":")
    try:
        n, ra = int(count), (float(retry) if retry else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use N or N:RETRY_AFTER_SECONDS") from None
    if n < 0 or (ra is not None and ra < 0):
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return n, ra


def _iso(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="A local Microsoft 365 tenant (Entra ID, Graph v1.0, SharePoint REST) "
                "over HTTPS, for the demo and the tests.",
                epilog=f"example: {PROG} --port 0 --tenants contoso --burst-429 3:1.5")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; others are warned)")
    p.add_argument("--port", type=int, default=8443, help="TCP port (default 8443; 0 = ephemeral, printed)")
    p.add_argument("--state-dir", type=Path, default=Path(".state/emulator"),
                   help="holds the CA and server certificate, reused across runs (default ./.state/emulator)")
    p.add_argument("--fixtures", type=Path, default=None,
                   help="folder of tenant documents to serve (default: contoso and fabrikam, shipped in the package)")
    p.add_argument("--tenants", default=None, help="only these tenants, by name: contoso,fabrikam")
    p.add_argument("--seed", type=int, default=1, help="presence model seed (default 1)")
    p.add_argument("--show-secrets", action="store_true", help="print client secrets and passwords")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    lim = p.add_argument_group("limits")
    lim.add_argument("--presence-limit", type=_positive(int), help="presence requests per app+tenant per window")
    lim.add_argument("--presence-window", type=_positive(float), help="presence budget window, seconds (30)")
    lim.add_argument("--max-presence-ids", type=_positive(int), help="ids per getPresencesByUserId (650)")
    lim.add_argument("--directory-limit", type=_positive(int), help="directory requests per app+tenant per window")
    lim.add_argument("--batch-max", type=_positive(int), help="requests per Graph $batch (20)")
    lim.add_argument("--sharepoint-ru-per-minute", type=_positive(int), metavar="N",
                     help="SharePoint resource units per app per tenant per rolling minute (1250; Microsoft's "
                          "tiers: 1250, 2500, 3750, 5000, 6250)")
    lim.add_argument("--delta-page-max", type=_positive(int), metavar="N",
                     help="objects per users/delta page, default and largest (200)")
    lim.add_argument("--token-lifetime", type=_positive(float), help="access token lifetime, seconds (3599)")
    lim.add_argument("--device-code-interval", type=int, default=5,
                     help="seconds clients wait between device-code polls (5, as Entra; tests use 0)")
    lim.add_argument("--unknown-presence-ids", choices=["item", "omit"],
                     help="unknown ids in getPresencesByUserId: PresenceUnknown item or omitted")
    clk = p.add_argument_group("presence clock")
    clk.add_argument("--clock-start", type=_iso, help="ISO 8601 start time of the presence clock")
    clk.add_argument("--clock-speed", type=float, default=1.0, help="presence clock speed factor (1.0)")
    clk.add_argument("--freeze-clock", action="store_true", help="the presence clock stands still")
    flt = p.add_argument_group("faults (Graph /v1.0 and /sites paths unless --fault-paths)")
    flt.add_argument("--latency", help="added latency: fixed:MS | uniform:MIN_MS,MAX_MS | exp:MEAN_MS | MS | "
                     "P50_MS:P99_MS (log-normal) for every call, or per kind KIND=SPEC,... with kinds presence, "
                     "directory, batch, sites, token, other (fallback), e.g. presence=150:400,other=80")
    flt.add_argument("--error-rate", type=_fraction, default=0.0, help="fraction of 500/502/503/504 answers")
    flt.add_argument("--burst-429", type=_burst, help="next N requests get 429 (N or N:RETRY_AFTER seconds)")
    flt.add_argument("--reset-rate", type=_fraction, default=0.0, help="fraction of connections dropped mid-reply")
    flt.add_argument("--truncate-rate", type=_fraction, default=0.0, help="fraction of JSON bodies cut short")
    flt.add_argument("--malformed-rate", type=_fraction, default=0.0, help="fraction of invalid-JSON 200s")
    flt.add_argument("--batch-item-429-rate", type=_fraction, default=0.0, metavar="F",
                     help="fraction of Graph $batch items answered 429 inside the 200 envelope, not run")
    flt.add_argument("--batch-item-retry-after", type=float, metavar="SECONDS",
                     help="Retry-After of those 429 items (0.5; each gets 80-100%% of it, fractional)")
    flt.add_argument("--throttle-for", type=_positive(float), metavar="SECONDS",
                     help="answer every matching request 429 for this long from the start (see --fault-paths)")
    flt.add_argument("--throttle-retry-after", type=_positive(float), metavar="SECONDS",
                     help="Retry-After of those 429s (5)")
    flt.add_argument("--fault-paths", help="comma-separated path prefixes the faults apply to (/v1.0,/sites); "
                     "/sites/NAME names one tenant's site (its REST calls and the Graph calls that address it)")
    flt.add_argument("--fault-seed", type=int, help="seed of the fault random stream")
    flt.add_argument("--revoke-tokens-every", type=_positive(float), metavar="SECONDS",
                     help="revoke every token this often")
    flt.add_argument("--refuse", metavar="SHAPE,...",
                     help="answer these request shapes as a tenant that does not support them (any path): "
                          + ", ".join(REFUSABLE_SHAPES))
    return p


def _limits(args: argparse.Namespace) -> Limits:
    limits = Limits()
    for flag, name in (("presence_limit", "presence_requests"), ("presence_window", "presence_window"),
                       ("max_presence_ids", "presence_max_ids"), ("directory_limit", "directory_requests"),
                       ("batch_max", "batch_max_requests"), ("token_lifetime", "token_lifetime"),
                       ("sharepoint_ru_per_minute", "sharepoint_ru_per_minute"),
                       ("delta_page_max", "delta_page_max"),
                       ("device_code_interval", "device_code_interval"),
                       ("unknown_presence_ids", "unknown_presence_ids")):
        value = getattr(args, flag)
        if value is not None:
            setattr(limits, name, value)
    if limits.device_code_interval < 0:
        raise UsageError("--device-code-interval must not be negative")
    return limits


def _faults(args: argparse.Namespace) -> FaultConfig:
    burst, retry_after = args.burst_429 or (0, None)
    values: dict[str, Any] = {
        "latency": args.latency, "error_rate": args.error_rate, "burst_429": burst, "reset_rate": args.reset_rate,
        "truncate_rate": args.truncate_rate, "malformed_rate": args.malformed_rate, "seed": args.fault_seed,
        "revoke_every": args.revoke_tokens_every, "batch_item_429_rate": args.batch_item_429_rate,
    }
    if args.throttle_for is not None:
        values["throttle_for"] = args.throttle_for
    if args.throttle_retry_after is not None:
        values["throttle_retry_after"] = args.throttle_retry_after
    if args.batch_item_retry_after is not None:
        values["batch_item_retry_after"] = args.batch_item_retry_after
    if retry_after is not None:
        values["burst_retry_after"] = retry_after
    if args.refuse:
        values["refuse"] = args.refuse
    if args.fault_paths:
        values["paths"] = [p.strip() for p in args.fault_paths.split(",") if p.strip()]
    try:
        return FaultConfig(**values)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _world(args: argparse.Namespace) -> World:
    names = [n.strip() for n in args.tenants.split(",") if n.strip()] if args.tenants else None
    try:
        world = load_world(args.fixtures, presence_seed=args.seed, names=names)
    except FixturesError as exc:
        raise UsageError(str(exc)) from None
    missing = set(names or ()) - {t.name for t in world.tenants.values()}
    if missing:
        where = args.fixtures or "the tenants shipped in the package"
        raise UsageError(f"no fixture for tenant(s) {', '.join(sorted(missing))} in {where}")
    return world


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def banner(srv: EmulatorServer, show_secrets: bool = False) -> str:
    """What a human (or a script) needs: URLs, trust, tenants, apps, sites and control paths."""
    base, ca = srv.base_url, srv.tls.ca_cert
    lines = [
        "presence-sync local tenant: Entra ID, Microsoft Graph v1.0 and SharePoint REST over HTTPS",
        f"  base URL   {base}",
        f"  CA file    {ca}",
        f"  trust it   export SSL_CERT_FILE={ca} REQUESTS_CA_BUNDLE={ca}",
        f"  authority  {base}/<tenant id or domain>     Graph  {base}/v1.0",
        "tenants",
    ]
    for t in srv.state.world.tenants.values():
        domains = ", ".join(d.id + ("" if d.is_verified else " (unverified)") for d in t.domains)
        lines += [f"  {t.name}  {t.tenant_id}  {t.display_name}", f"    domains   {domains}"]
        lists = ", ".join(f'"{lst.title}"' for lst in t.site.lists.values())
        lines.append(f"    site      {base}{t.site.path}  (lists {lists}; UPN column \"{t.upn_column}\")")
        for a in t.apps:
            secret = ""
            if a.client_secret:
                secret = f"  secret {a.client_secret}" if show_secrets else "  secret hidden (--show-secrets)"
            flags = " [secret expired]" if a.secret_expired else ""
            flags += "" if a.admin_consented else " [no admin consent]"
            lines.append(f"    app       {a.client_id}  {a.kind:<12} {a.display_name}{flags}{secret}")
        for s in t.service_accounts:
            pw = f"  password {s.password}" if show_secrets else ""
            lines.append(f"    account   {s.upn}{' [MFA required]' if s.mfa_required else ''}{pw}")
    lines.append("control (no token, loopback only)")
    lines += [f"  {p}" for p in CONTROL_PATHS]
    lines.append(f"  device login page: {base}/devicelogin")
    return "\n".join(lines)


def _prepare(args: argparse.Namespace) -> EmulatorServer:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port")
    if not _is_loopback(args.host):
        print(f"warning: serving on {args.host}, not loopback: anyone who can reach it can sign in and use "
              "the control API's secrets", file=sys.stderr)
    limits, faults, world = _limits(args), _faults(args), _world(args)
    try:
        srv = EmulatorServer(state_dir=args.state_dir, host=args.host, port=args.port, seed=args.seed,
                             limits=limits, world=world, log_level=args.log_level)
    except OSError as exc:
        raise UsageError(f"cannot use state directory {args.state_dir}: {exc.strerror or exc}") from None
    srv.state.faults = faults
    srv.state.clock = Clock(start=args.clock_start, speed=args.clock_speed, frozen=args.freeze_clock)
    srv.state.presence.warm(srv.state.world.tenants.values(), srv.state.clock.now())
    try:
        srv._bind()
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return srv


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, start the tenant and serve until SIGINT/SIGTERM."""
    try:
        # uvicorn restores these and re-raises the signal on exit. SIGINT too: with Python's default handler in
        # place, asyncio.run takes SIGINT over while uvicorn starts, and a SIGINT in that moment left the tenant
        # serving instead of stopping.
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        return _run(argv)
    except (KeyboardInterrupt, _Stop):  # a signal at any moment, also before uvicorn took over
        return 0


def _run(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        srv = _prepare(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    print(banner(srv, args.show_secrets), flush=True)
    print(json.dumps({"base_url": srv.base_url, "ca_file": str(srv.tls.ca_cert)}), flush=True)
    srv.serve_forever()
    return 0
