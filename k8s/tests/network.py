"""The cluster network around the pods the "manifests run" test starts, built from the rendered
Services and Ingress.

- Every pod and Service gets its own loopback address in one 127.x.y.0/24 of the run (Linux routes
  all of 127/8 to `lo`), so a pod listening on 0.0.0.0 is reached at its pod IP, like in its own
  network namespace, and a ClusterIP Service listens on its own port (80).
- `Services` plays kube-proxy and cluster DNS: `<service>.<namespace>.svc.cluster.local` in a pod's
  environment becomes that Service's ClusterIP, whose ports forward to a Ready pod selected by
  the Service's selector, at the targetPort (a number, or a container port name looked up in the
  pod). A name with no Service stays unresolvable, as in the cluster.
- `Alb` plays the AWS Load Balancer Controller's ALB for an Ingress of class `alb` with target
  type `ip`: the rules' paths (Exact / Prefix with Kubernetes' element-wise matching, the longest
  path first), target groups of the backend Services' Ready pod IPs at the targetPort, health
  checks from the annotations before any traffic, `X-Forwarded-*` headers, and a 404 for any path
  no rule routes. TLS and the HTTP → HTTPS redirect are not simulated: the test talks to the ALB
  as its HTTPS listener would pass the request on.
"""

import fnmatch
import http.client
import http.server
import ipaddress
import itertools
import random
import re
import secrets
import socket
import socketserver
import threading


HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "content-length"}
DNS_NAME = re.compile(r"\b([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.svc(?:\.cluster\.local)?\b\.?")


class Subnet:
    """One /24 of 127/8 for a run: pods from .10, Services from .100, the ALB at .200."""

    def __init__(self):
        base = ipaddress.ip_address(f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.0")
        self.pods = (str(base + i) for i in itertools.count(10))
        self.services = (str(base + i) for i in itertools.count(100))
        self.alb = str(base + 200)


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def target_port(service_port: dict, pod) -> int | None:
    """The pod port a Service port forwards to, or None when the pod has no such named port."""
    target = service_port.get("targetPort", service_port["port"])
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    return pod.ports.get(target)


class Forwarder(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Services:
    """ClusterIPs for every Service of the rendered manifests, forwarding to Ready pods."""

    def __init__(self, objects: list[dict], subnet: Subnet):
        self.pods = []
        self.servers: list[Forwarder] = []
        self.cluster_ip: dict[tuple[str, str], str] = {}
        self.services: dict[tuple[str, str], dict] = {}
        for svc in (o for o in objects if o["kind"] == "Service"):
            key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
            self.services[key] = svc
            ip = self.cluster_ip[key] = next(subnet.services)
            for port in svc["spec"]["ports"]:
                self.listen(ip, svc, port)
        self.counter = itertools.count()

    def listen(self, ip: str, svc: dict, port: dict):
        network = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                endpoints = network.endpoints(svc, port)
                if not endpoints:
                    return  # no Ready endpoint: the connection is refused / reset
                pod, target = endpoints[next(network.counter) % len(endpoints)]
                try:
                    upstream = socket.create_connection((pod.ip, target), timeout=10)
                except OSError:
                    return
                splice(self.request, upstream)

        try:
            server = Forwarder((ip, port["port"]), Handler)
        except OSError as error:
            raise AssertionError(f"cannot give Service {svc['metadata']['name']} its ClusterIP {ip}:{port['port']} "
                                 f"({error}); binding a port below 1024 needs root") from None
        self.servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def endpoints(self, svc: dict, port: dict) -> list:
        found = []
        for pod in self.pods:
            if pod.namespace != svc["metadata"]["namespace"] or not pod.ready:
                continue
            if not selects(svc["spec"].get("selector", {}), pod.labels):
                continue
            target = target_port(port, pod)
            if target is not None:
                found.append((pod, target))
        return found

    def resolve_dns(self, value: str) -> str:
        def one(match):
            key = (match.group(2), match.group(1))
            if key in self.cluster_ip:
                return self.cluster_ip[key]
            return f"{match.group(1)}.{match.group(2)}.svc.cluster.local.invalid"  # NXDOMAIN, as in the cluster

        return DNS_NAME.sub(one, value)

    def links(self, namespace: str) -> dict[str, str]:
        """The Docker-link style variables Kubernetes sets for the namespace's Services."""
        env = {}
        for (ns, name), svc in self.services.items():
            if ns != namespace:
                continue
            prefix, ip = name.upper().replace("-", "_"), self.cluster_ip[(ns, name)]
            ports = svc["spec"]["ports"]
            env[f"{prefix}_SERVICE_HOST"] = ip
            env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
            env[f"{prefix}_PORT"] = f"tcp://{ip}:{ports[0]['port']}"
            for port in ports:
                protocol = port.get("protocol", "TCP")
                if port.get("name"):
                    env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
                base = f"{prefix}_PORT_{port['port']}_{protocol}"
                env[base] = f"{protocol.lower()}://{ip}:{port['port']}"
                env[f"{base}_PROTO"], env[f"{base}_PORT"], env[f"{base}_ADDR"] = protocol.lower(), str(port["port"]), ip
        return env

    def close(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()


def splice(client: socket.socket, upstream: socket.socket):
    def pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    other = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    other.start()
    pump(client, upstream)
    other.join(30)
    upstream.close()


def success_codes(annotation: str) -> set[int]:
    codes = set()
    for part in annotation.split(","):
        low, _, high = part.strip().partition("-")
        codes.update(range(int(low), int(high or low) + 1))
    return codes


class Alb:
    """The ALB the AWS Load Balancer Controller would build for one Ingress."""

    ANNOTATION = "alb.ingress.kubernetes.io/"

    def __init__(self, ingress: dict, services: Services, ingress_class: str, ip: str):
        self.services, self.ingress = services, ingress
        self.namespace = ingress["metadata"]["namespace"]
        spec = ingress["spec"]
        if spec.get("ingressClassName") != ingress_class:
            raise AssertionError(f"Ingress {ingress['metadata']['name']} has class {spec.get('ingressClassName')!r}: "
                                 f"no {ingress_class!r} controller would build a load balancer for it")
        annotations = {k.removeprefix(self.ANNOTATION): v for k, v in ingress["metadata"].get("annotations", {}).items()
                       if k.startswith(self.ANNOTATION)}
        self.target_type = annotations.get("target-type", "instance")
        if self.target_type != "ip":
            raise AssertionError(f"target type {self.target_type!r}: only `ip` reaches ClusterIP Services' pods")
        self.health_path = annotations.get("healthcheck-path", "/")
        self.health_port = annotations.get("healthcheck-port", "traffic-port")
        self.health_codes = success_codes(annotations.get("success-codes", "200"))
        self.healthy_count = int(annotations.get("healthy-threshold-count", "5"))
        self.rules = []
        for rule in spec.get("rules", []):
            for index, path in enumerate(rule.get("http", {}).get("paths", [])):
                self.rules.append((rule.get("host"), path.get("pathType"), path["path"], path["backend"], index))
        self.default_backend = spec.get("defaultBackend")
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.server = self.serve(ip)
        self.url = f"http://{ip}:{self.server.server_address[1]}"

    # -- routing -----------------------------------------------------------------------------

    @staticmethod
    def matches(path_type: str, rule_path: str, path: str) -> bool:
        if path_type == "Exact":
            return path == rule_path
        if path_type == "Prefix":
            prefix = rule_path.rstrip("/")
            return prefix == "" or path == prefix or path.startswith(prefix + "/")
        if path_type == "ImplementationSpecific":
            return fnmatch.fnmatchcase(path, rule_path)  # the ALB's path patterns: * and ?
        raise AssertionError(f"pathType {path_type!r} is not a Kubernetes path type")

    def route(self, host: str | None, path: str):
        """The backend for a request: Kubernetes' precedence, longest path first, Exact before Prefix."""
        candidates = [r for r in self.rules if (r[0] is None or r[0] == host) and self.matches(r[1], r[2], path)]
        if not candidates:
            return None, self.default_backend
        host_rule, path_type, rule_path, backend, _ = max(
            candidates, key=lambda r: (r[0] is not None, len(r[2].rstrip("/")), r[1] == "Exact", -r[4]))
        return rule_path, backend

    def targets(self, backend: dict) -> list:
        """The target group of a backend: the Ready pod IPs of its Service at the targetPort."""
        ref = backend.get("service")
        if ref is None:
            raise AssertionError(f"backend {backend} names no Service")
        key = (self.namespace, ref["name"])
        svc = self.services.services.get(key)
        if svc is None:
            raise AssertionError(f"backend Service {ref['name']!r} does not exist in {self.namespace}")
        wanted = ref["port"]
        ports = [p for p in svc["spec"]["ports"]
                 if ("number" in wanted and p["port"] == wanted["number"]) or ("name" in wanted and p.get("name") == wanted["name"])]
        if not ports:
            raise AssertionError(f"backend port {wanted} is not a port of Service {ref['name']} "
                                 f"({[p['port'] for p in svc['spec']['ports']]})")
        return self.services.endpoints(svc, ports[0])

    def health_check(self):
        """What the target groups' health checks decide before the ALB sends any traffic: every
        target answers the health-check path with a success code `healthy-threshold-count` times."""
        backends = [r[3] for r in self.rules] + ([self.default_backend] if self.default_backend else [])
        checked = {}
        for backend in backends:
            targets = self.targets(backend)
            name = backend["service"]["name"]
            if not targets:
                raise AssertionError(f"target group of {name}: no registered target (no Ready pod selected, or none has the targetPort)")
            for pod, port in targets:
                health_port = port if self.health_port == "traffic-port" else int(self.health_port)
                for _ in range(self.healthy_count):
                    status = fetch_status(pod.ip, health_port, self.health_path)
                    if status not in self.health_codes:
                        raise AssertionError(f"target group of {name}: health check GET {self.health_path} on "
                                             f"{pod.name} ({pod.ip}:{health_port}) answered {status}, not one of "
                                             f"{sorted(self.health_codes)} — the target stays unhealthy")
                checked[f"{name} {pod.name}:{health_port}"] = self.healthy_count
        return checked

    # -- serving -----------------------------------------------------------------------------

    def serve(self, ip: str):
        alb = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                path = self.path.split("?", 1)[0]
                host = (self.headers.get("Host") or "").split(":", 1)[0] or None
                rule, backend = alb.route(host, path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                entry = {"method": self.command, "path": self.path, "rule": rule, "service": None, "pod": None}
                if backend is None:
                    return self.answer(entry, 404, {"Content-Type": "text/plain; charset=utf-8"}, b"")
                targets = alb.targets(backend)
                entry["service"] = backend["service"]["name"]
                if not targets:
                    return self.answer(entry, 503, {"Content-Type": "text/html"}, b"503 Service Temporarily Unavailable")
                pod, port = random.choice(targets)
                entry["pod"] = pod.name
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                forwarded = headers.pop("X-Forwarded-For", None)
                headers["X-Forwarded-For"] = f"{forwarded}, {self.client_address[0]}" if forwarded else self.client_address[0]
                headers["X-Forwarded-Proto"], headers["X-Forwarded-Port"] = "https", "443"
                headers["X-Amzn-Trace-Id"] = f"Root=1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
                connection = http.client.HTTPConnection(pod.ip, port, timeout=30)
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    reply = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
                    return self.answer(entry, response.status, reply, data)
                except OSError as error:
                    entry["error"] = str(error)
                    return self.answer(entry, 502, {"Content-Type": "text/html"}, b"502 Bad Gateway")
                finally:
                    connection.close()

            def answer(self, entry, status, headers, data):
                entry["status"] = status
                with alb.lock:
                    alb.log.append(entry)
                self.send_response_only(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any

        server = http.server.ThreadingHTTPServer((ip, 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def fetch_status(host: str, port: int, path: str, timeout: float = 5) -> int | str:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "ELB-HealthChecker/2.0"})
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    finally:
        connection.close()

