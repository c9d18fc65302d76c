"""A real one-node Ray cluster for the Ray backend's tests: `ray start --head --block` on 127.0.0.1
with 2 CPUs, in a session of its own that the test stops by signalling that session (nothing else).

Loopback only: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps Ray from swapping 127.0.0.1 for the
machine's network address, usage statistics are off, and token authentication is off for this
throw-away cluster. The variables are set for the test process, so drivers it starts inherit them.
"""
import os
import signal
import socket
import subprocess
import sys
import time

ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_head(log_path: str, cpus: int = 2) -> tuple[subprocess.Popen, str]:
    os.environ.update(ENV)
    port = free_port()
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    with open(log_path, "ab") as log:
        head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                                 "--port", str(port), "--num-cpus", str(cpus), "--num-gpus", "0",
                                 "--include-dashboard=false", "--disable-usage-stats"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    address = f"127.0.0.1:{port}"
    import ray
    deadline = time.time() + 300   # a loaded machine (2 cores shared by many) takes minutes
    while True:   # up when a driver connects and sees the node's CPUs
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            if ray.cluster_resources().get("CPU", 0) >= cpus:
                break
        except (ConnectionError, RuntimeError):
            pass
        finally:
            ray.shutdown()
        if head.poll() is not None or time.time() > deadline:
            stop_head(head)
            with open(log_path, errors="replace") as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"ray start --head did not come up (exit code {head.poll()}); {log_path} ends:\n{tail}")
        time.sleep(1)
    return head, address


def stop_head(head: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(head.pid, sig)   # the head's own session: gcs, raylet, workers
        except ProcessLookupError:
            return
        try:
            head.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(head.pid, signal.SIGKILL)   # leftovers of the session
    except ProcessLookupError:
        pass
