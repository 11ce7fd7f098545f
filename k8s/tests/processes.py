"""Processes the k8s tests start: the built wharf binaries and Prometheus, on free ports, each
with a log file that is printed when a test fails, always stopped by the test that started it."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


def bin_dir() -> pathlib.Path:
    """Where the entry script built the binaries (CARGO_TARGET_DIR/debug)."""
    value = os.environ.get("WHARF_BIN_DIR")
    assert value, "WHARF_BIN_DIR is not set: run the k8s tests through scripts/check-k8s.sh"
    path = pathlib.Path(value)
    for name in ("products", "orders", "notifications", "wharf"):
        assert (path / name).is_file(), f"{path / name} is not built"
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Process:
    """One child process with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: pathlib.Path, cwd=None,
                 user: int | None = None, group: int | None = None):
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._log_file = self.log.open("wb")
        # user/group: run as that UID/GID (and no supplementary groups), as a pod's securityContext says.
        ids = {} if user is None else {"user": user, "group": group if group is not None else user, "extra_groups": []}
        self.popen = subprocess.Popen(argv, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
                                      cwd=cwd or log_dir, start_new_session=True, **ids)

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log_file.close()
        return self.popen.returncode


def http(method: str, url: str, body=None, headers=None, timeout: float = 5):
    """(status, headers, body bytes); HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def wait_until(what: str, check, timeout: float, process: Process | None = None, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise AssertionError(f"{process.name} exited ({process.popen.returncode}) while waiting for {what}:\n"
                                 f"{process.output()[-4000:]}")
        try:
            if check():
                return
        except OSError as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")
