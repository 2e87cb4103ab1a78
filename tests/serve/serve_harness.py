"""Starts `kvsieve serve` on a free loopback port for the tests and the
benchmark, and stops it: the server prints its port on stdout."""
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request


class Server:
    def __init__(self, binary, model, *args, env=None):
        self.cmd = [binary, "serve", "-m", model, "--port", "0", *map(str, args)]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.stderr_lines = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://([^:]+):(\d+)", line)
        if not m:
            self.proc.wait(timeout=10)
            raise RuntimeError("kvsieve serve did not start: %r\n%s" % (line, "".join(self.stderr_lines)))
        self.host, self.port = m.group(1), int(m.group(2))
        self.url = "http://%s:%d" % (self.host, self.port)

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
        self.proc.stderr.close()

    def get(self, path, headers=None):
        req = urllib.request.Request(self.url + path, headers=headers or {})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()

    def metrics(self):
        """The /metrics gauges and counters as {name{labels}: value}."""
        _, text = self.get("/metrics")
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def peak_rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode
