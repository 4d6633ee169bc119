"""The platform's own metrics, simulated: the NestJS API and the WebSocket gateway are not in the
sandbox, so this small server publishes their series in the exact shape their libraries produce,
and takes an HTTP control that sets what the traffic looks like.

- `/metrics/api`: prom-client's `http_request_duration_seconds` histogram (labels `method`,
  `route`, `status_code`; prom-client's default buckets) and the default Node.js metric
  `nodejs_eventloop_lag_p99_seconds`, as scraped from one API pod (job "api").
- `/metrics/gateway`: the gateway's `ws_connections_open` gauge, `ws_disconnects_total{reason}`
  counter (`client_close` when the client ends the socket) and
  `ws_message_delivery_duration_seconds` histogram (alerts/README.md), job "websocket-gateway".
- the same paths over HTTPS on a second port (`--tls-port`), with a self-signed certificate valid
  for `tls.cert_days` days: the platform's public endpoint, as blackbox_exporter probes it;
  changing `tls.cert_days` issues a new certificate that the next handshake serves.
- `GET /control` the current settings; `POST /control` a JSON object of settings to change
  (`{"api": {"status_ratios": {"500": 0.5}}}`), answered with the new settings; 400 names a
  setting that does not exist or a value out of range.

Counters advance with wall time at the configured rates, settled on every scrape and before
every change, so a change takes effect from the moment it is made. Run it with
`python -m sre.sandbox.appsim --port P` (the sandbox does, as a process of its own).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.local.procs import ManagedProcess, free_port

if TYPE_CHECKING:
    from sre.sandbox.prometheus import Prometheus

# prom-client's default histogram buckets (prom-client/lib/bucketGenerators.js defaults).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUTES = (("GET", "/conversations"), ("POST", "/messages"), ("GET", "/users/me"))
DISCONNECT_REASONS = ("client_close", "ping_timeout", "server_error")
ZEROED_CODES = ("200", "401", "429", "500")  # every code a rule selects on has a series

DEFAULTS: dict[str, dict[str, Any]] = {
    "api": {
        "request_rate": 30.0,          # requests per second, spread evenly over ROUTES
        "latency_seconds": 0.04,       # every request's duration
        "status_ratios": {},           # share of requests answered with each non-2xx code, e.g. {"500": 0.1}
        "event_loop_lag_p99_seconds": 0.01,
    },
    "gateway": {
        "connections": 1000.0,         # open sockets now
        "client_close_rate": 1.0,      # sockets the clients close per second (replaced at once)
        "churn_rate": 0.0,             # sockets the server side drops per second (reason ping_timeout)
        "delivery_rate": 50.0,         # messages delivered per second
        "delivery_latency_seconds": 0.05,
    },
    "tls": {"cert_days": 90.0},
}


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _num(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if value != int(value) else str(int(value))


class Histogram:
    """Cumulative bucket counts per label set, as prom-client keeps them."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.series: dict[tuple[tuple[str, str], ...], list[float]] = {}  # labels -> bucket counts + [sum]

    def observe_many(self, labels: tuple[tuple[str, str], ...], value: float, count: int) -> None:
        counts = self.series.setdefault(labels, [0.0] * (len(BUCKETS) + 2))
        for i, le in enumerate((*BUCKETS, math.inf)):
            if value <= le:
                counts[i] += count
        counts[-1] += value * count

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for labels, counts in sorted(self.series.items()):
            base = ",".join(f'{k}="{_label(v)}"' for k, v in labels)
            for le, n in zip((*BUCKETS, math.inf), counts[:-1], strict=True):
                lines.append(f'{self.name}_bucket{{le="{_num(le)}",{base}}} {_num(n)}')
            lines.append(f"{self.name}_sum{{{base}}} {counts[-1]!r}")
            lines.append(f"{self.name}_count{{{base}}} {_num(counts[-2])}")
        return lines


class Simulator:
    """The state behind both endpoints; every public method is safe from several threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 on_tls_change: Callable[[float], None] | None = None) -> None:
        self.settings = copy.deepcopy(DEFAULTS)
        self.on_tls_change = on_tls_change
        self.clock = clock
        self.last = clock()
        self.lock = threading.Lock()
        # Fractional remainders, so low rates still produce whole requests over time.
        self.carry: dict[str, float] = {}
        self.http = Histogram("http_request_duration_seconds", "Duration of HTTP requests in seconds")
        self.delivery = Histogram("ws_message_delivery_duration_seconds",
                                  "Time from a message's acceptance to its write on a socket")
        self.disconnects = dict.fromkeys(DISCONNECT_REASONS, 0.0)
        # prom-client shows a label set once it is observed or zeroed (`histogram.zero(labels)`).
        # The simulated API zeroes its 500s at start, so a 5xx ratio exists before the first
        # error (a series born at 1 has no rate() until its second sample).
        for method, route in ROUTES:
            for code in ZEROED_CODES:
                self.http.observe_many((("method", method), ("route", route), ("status_code", code)), 0.0, 0)
        self.delivery.observe_many((), 0.0, 0)

    def _whole(self, key: str, amount: float) -> int:
        total = self.carry.get(key, 0.0) + amount
        whole = int(total)
        self.carry[key] = total - whole
        return whole

    def _advance(self) -> None:
        now = self.clock()
        dt, self.last = max(0.0, now - self.last), now
        api, gw = self.settings["api"], self.settings["gateway"]
        per_route = api["request_rate"] * dt / len(ROUTES)
        ratios = {code: float(share) for code, share in api["status_ratios"].items()}
        ok_share = max(0.0, 1.0 - sum(ratios.values()))
        for method, route in ROUTES:
            for code, share in (("200", ok_share), *ratios.items()):
                n = self._whole(f"http:{method}:{route}:{code}", per_route * share)
                if n:
                    labels = (("method", method), ("route", route), ("status_code", code))
                    self.http.observe_many(labels, api["latency_seconds"], n)
        n = self._whole("delivery", gw["delivery_rate"] * dt)
        if n:
            self.delivery.observe_many((), gw["delivery_latency_seconds"], n)
        self.disconnects["client_close"] += self._whole("client_close", gw["client_close_rate"] * dt)
        self.disconnects["ping_timeout"] += self._whole("ping_timeout", gw["churn_rate"] * dt)

    def api_metrics(self) -> str:
        with self.lock:
            self._advance()
            lines = self.http.render()
            lines += ["# HELP nodejs_eventloop_lag_p99_seconds The 99th percentile of the recorded event loop delays.",
                      "# TYPE nodejs_eventloop_lag_p99_seconds gauge",
                      f"nodejs_eventloop_lag_p99_seconds {self.settings['api']['event_loop_lag_p99_seconds']!r}"]
        return "\n".join(lines) + "\n"

    def gateway_metrics(self) -> str:
        with self.lock:
            self._advance()
            lines = ["# HELP ws_connections_open Open WebSocket connections", "# TYPE ws_connections_open gauge",
                     f"ws_connections_open {_num(round(self.settings['gateway']['connections']))}",
                     "# HELP ws_disconnects_total WebSocket connections closed, by reason",
                     "# TYPE ws_disconnects_total counter"]
            lines += [f'ws_disconnects_total{{reason="{r}"}} {_num(n)}' for r, n in sorted(self.disconnects.items())]
            lines += self.delivery.render()
        return "\n".join(lines) + "\n"

    def get(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.settings)

    def update(self, change: dict[str, Any]) -> dict[str, Any]:
        """Apply `change` (a partial settings object); ValueError names what is wrong."""
        new = copy.deepcopy(self.settings)
        for part, values in change.items():
            if part not in new or not isinstance(values, dict):
                raise ValueError(f"unknown part {part!r} (api, gateway)")
            for key, value in values.items():
                if key not in new[part]:
                    raise ValueError(f"unknown setting {part}.{key}")
                if key == "status_ratios":
                    if not isinstance(value, dict) or not all(
                            str(code).isdigit() and len(str(code)) == 3 and str(code) != "200"
                            and isinstance(share, (int, float)) and 0 <= share <= 1 for code, share in value.items()):
                        raise ValueError("api.status_ratios: {\"<3-digit code>\": share between 0 and 1}")
                    if sum(value.values()) > 1:
                        raise ValueError("api.status_ratios: the shares add up to more than 1")
                    new[part][key] = {str(code): float(share) for code, share in value.items()}
                elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{part}.{key}: a number >= 0")
                elif key == "cert_days" and not 1 <= value <= 3650:
                    raise ValueError("tls.cert_days: between 1 and 3650")
                else:
                    new[part][key] = float(value)
        if self.on_tls_change and new["tls"] != self.settings["tls"]:
            self.on_tls_change(new["tls"]["cert_days"])
        with self.lock:
            self._advance()  # what happened until now happened at the old settings
            self.settings = new
            return copy.deepcopy(self.settings)


def make_handler(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: str, ctype: str = "application/json") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            text = "text/plain; version=0.0.4; charset=utf-8"
            if path == "/metrics/api":
                self._send(200, sim.api_metrics(), text)
            elif path == "/metrics/gateway":
                self._send(200, sim.gateway_metrics(), text)
            elif path == "/control":
                self._send(200, json.dumps(sim.get()))
            elif path == "/healthz":
                self._send(200, "ok", "text/plain")
            else:
                self._send(404, json.dumps({"error": "not found"}))

        def do_POST(self) -> None:
            if self.path != "/control":
                self._send(404, json.dumps({"error": "not found"}))
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                change = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(change, dict):
                    raise ValueError("a JSON object of settings")
                self._send(200, json.dumps(sim.update(change)))
            except (ValueError, json.JSONDecodeError) as exc:
                self._send(400, json.dumps({"error": str(exc)}))

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape would drown the log

    return Handler


NAMESPACE = "messaging"


@dataclass
class AppSim:
    """The simulator as a process of the stack, scraped as job "api" and job "websocket-gateway"
    with the labels the rules group by (namespace, pod)."""

    root: Path
    port: int
    tls_port: int
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        """The simulated public endpoint, for blackbox_exporter's https module."""
        return f"https://127.0.0.1:{self.tls_port}/healthz"

    @classmethod
    def start(cls, root: Path) -> AppSim:
        sim = cls(root, free_port(), free_port())
        root.mkdir(parents=True, exist_ok=True)
        sim.process = ManagedProcess(name="appsim", cmd=[sys.executable, "-m", "sre.sandbox.appsim",
                                                         "--port", str(sim.port), "--tls-port", str(sim.tls_port),
                                                         "--tls-dir", str(root)],
                                     log_path=root / "appsim.log").start()
        sim.process.wait_ready(lambda: urllib.request.urlopen(f"{sim.url}/healthz", timeout=1).status == 200)
        return sim

    def register(self, prometheus: Prometheus) -> None:
        address = self.url.removeprefix("http://")
        prometheus.set_scrape_targets("api", [address], {"namespace": NAMESPACE, "pod": "api-sim-0"},
                                      metrics_path="/metrics/api")
        prometheus.set_scrape_targets("websocket-gateway", [address],
                                      {"namespace": NAMESPACE, "pod": "websocket-gateway-sim-0"},
                                      metrics_path="/metrics/gateway")

    def control(self, change: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST `change` to /control (GET without one); the settings now in force."""
        data = None if change is None else json.dumps(change).encode()
        req = urllib.request.Request(f"{self.url}/control", data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            result: dict[str, Any] = json.loads(resp.read())
        return result

    def components(self) -> list[dict[str, Any]]:
        return [{"component": "appsim (API, gateway metrics)", "url": self.url,
                 "pid": self.process.pid if self.process else None,
                 "log": str(self.process.log_path) if self.process else ""}]

    def stop(self) -> None:
        if self.process:
            self.process.stop()


class Certificate:
    """A self-signed certificate for the HTTPS port, reissued with another lifetime on demand.

    Loading a new chain into the same SSLContext changes what the next handshake serves, so
    the listening socket stays as it is."""

    def __init__(self, directory: Path) -> None:
        self.cert, self.key = directory / "tls.crt", directory / "tls.key"
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    def issue(self, days: float) -> None:
        # openssl counts whole days; a lifetime under a day still shows as "expires soon".
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                        "-days", str(max(1, int(days))), "-subj", "/CN=api.messaging.sandbox",
                        "-addext", "subjectAltName=DNS:api.messaging.sandbox,IP:127.0.0.1",
                        "-keyout", str(self.key), "-out", str(self.cert)],
                       check=True, capture_output=True, timeout=30)
        self.context.load_cert_chain(self.cert, self.key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int, help="also serve HTTPS here (needs --tls-dir)")
    parser.add_argument("--tls-dir", type=Path, help="where the certificate and key are written")
    args = parser.parse_args()
    cert = Certificate(args.tls_dir) if args.tls_port and args.tls_dir else None
    sim = Simulator(on_tls_change=cert.issue if cert else None)
    handler = make_handler(sim)
    if cert is not None:
        cert.issue(DEFAULTS["tls"]["cert_days"])
        tls_server = ThreadingHTTPServer(("127.0.0.1", args.tls_port), handler)
        tls_server.socket = cert.context.wrap_socket(tls_server.socket, server_side=True)
        threading.Thread(target=tls_server.serve_forever, daemon=True, name="https").start()
    ThreadingHTTPServer(("127.0.0.1", args.port), handler).serve_forever()


if __name__ == "__main__":
    main()
