"""hotroute as a mock API from Python: start `hotroute --port 0` on routes given as TOML, talk to it, stop it.

Copy this file and conftest.py (the pytest fixture) next to your tests. This module needs only the standard library
and the hotroute binary, found as the first of: $HOTROUTE_BIN, target/release/hotroute, target/debug/hotroute
(target/ is $CARGO_TARGET_DIR when set, else this repository's), then `hotroute` on PATH.

    server = Hotroute('[[route]]\\npath = "/hello"\\nbody = "Hello World"\\n')
    assert server.get("/hello").text() == "Hello World"
    server.stop()  # SIGTERM; the temp folder holding routes.toml is removed
"""

import json
import os
import pathlib
import selectors
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
EXE = "hotroute.exe" if sys.platform == "win32" else "hotroute"
START_TIMEOUT = 10  # seconds the server may take to print its `listening on` line

# Loopback needs no proxy, whatever http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HotrouteError(RuntimeError):
    """hotroute could not be found or did not start; the message says why, with the server's own error text."""


def _is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_hotroute(env=None):
    """The path of the hotroute binary: $HOTROUTE_BIN, then target/release, then target/debug (under
    $CARGO_TARGET_DIR when set), then PATH. Raises HotrouteError listing every place tried when there is none.
    `env` (default os.environ) is only for tests."""
    env = os.environ if env is None else env
    if env.get("HOTROUTE_BIN"):
        if _is_executable(env["HOTROUTE_BIN"]):
            return env["HOTROUTE_BIN"]
        raise HotrouteError(
            f"HOTROUTE_BIN is {env['HOTROUTE_BIN']}, which is not an executable file: build hotroute "
            "(`cargo build --release`) or unset HOTROUTE_BIN to look in target/ and on PATH"
        )
    target = pathlib.Path(env["CARGO_TARGET_DIR"]).resolve() if env.get("CARGO_TARGET_DIR") else REPO / "target"
    built = [target / "release" / EXE, target / "debug" / EXE]
    for path in built:
        if _is_executable(path):
            return str(path)
    found = shutil.which(EXE, path=env.get("PATH", ""))
    if found:
        return found
    raise HotrouteError(
        f"hotroute binary not found. Tried: $HOTROUTE_BIN (not set), {', '.join(map(str, built))}, and `{EXE}` on "
        "PATH. Build it with `cargo build --release` in the hotroute repository, or set HOTROUTE_BIN to its path."
    )


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def text(self):
        return self.body.decode()

    def json(self):
        return json.loads(self.body)


class Hotroute:
    """A running `hotroute --port 0` with the routes given as TOML, written to `folder/routes.toml`.

    Without `folder`, a new temp folder is used and removed by `stop()`. The server's stderr goes to
    `folder/hotroute.log` (`log()` reads it); when the server does not start, HotrouteError carries it.
    `binary` is the binary to run (default: find_hotroute()).
    """

    def __init__(self, routes_toml, folder=None, binary=None):
        binary = binary or find_hotroute()
        self.stderr = ""  # the server's stderr, once it has stopped
        self._owns_folder = folder is None
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="hotroute-")) if folder is None else pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        routes = self.folder / "routes.toml"
        routes.write_text(routes_toml)
        self.log_path = self.folder / "hotroute.log"
        # A file, not a pipe: nobody has to read it while the server runs, and it is there when it fails.
        with open(self.log_path, "wb") as log:
            try:
                self.process = subprocess.Popen(
                    [binary, str(routes), "--port", "0", "--log-level", "warn"],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            except OSError as err:
                self._remove_folder()
                raise HotrouteError(f"hotroute could not be run ({binary}): {err}") from err
        # The first stdout line is `listening on http://IP:PORT`; wait for it at most START_TIMEOUT seconds.
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout=START_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            if not ready:
                why = f"it printed nothing within {START_TIMEOUT} s"
            elif line:
                why = f"its first line was {line!r}"
            else:
                why = f"it exited with status {self.process.wait(timeout=START_TIMEOUT)}"
            self.stop()
            stderr = self.stderr.strip()
            raise HotrouteError(
                f"hotroute did not start: {why}; its stderr:\n{stderr}" if stderr
                else f"hotroute did not start: {why} and wrote nothing on stderr"
            )
        self.base_url = line.strip().removeprefix("listening on ")

    def url(self, path):
        return self.base_url + path

    def request(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            headers.setdefault("content-type", "application/json")
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=headers)
        try:
            with _OPENER.open(req, timeout=10) as res:
                return Response(res.status, res.headers, res.read())
        except urllib.error.HTTPError as err:  # 4xx and 5xx are answers too
            return Response(err.code, err.headers, err.read())

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def requests(self):
        """The journal: what the server received, oldest first."""
        return self.get("/__admin/requests?bodies=true&limit=1000").json()["requests"]

    def clear(self):
        self.request("DELETE", "/__admin/requests")

    def coverage(self):
        """Routes never hit and requests no route answered."""
        return self.get("/__admin/coverage").json()

    def add_routes(self, routes_toml):
        """Adds runtime routes (one or more `[[route]]` tables), tried before the route file's; returns their ids.
        A refused text raises HotrouteError with the server's errors (line and column in the text sent)."""
        res = self._admin("POST", "/__admin/routes", routes_toml.encode())
        if res.status != 200:
            raise HotrouteError(f"hotroute refused the routes ({res.status}):\n{res.text()}")
        return res.json()["ids"]

    def remove_routes(self, *ids):
        """Removes the runtime routes with these ids, or all of them when none is given."""
        for path in [f"/__admin/routes/{i}" for i in ids] or ["/__admin/routes?origin=runtime"]:
            self._check(self._admin("DELETE", path))

    def reset(self, routes=True):
        """Puts the server back at its start: the journal emptied, sequences, counters and scenarios reset, and
        (unless `routes=False`) the runtime routes removed."""
        self._check(self._admin("POST", "/__admin/reset" + ("?routes=true" if routes else "")))

    def scenario(self, name):
        """The state scenario `name` is in (every scenario starts in "started")."""
        for s in self.get("/__admin/scenarios").json()["scenarios"]:
            if s["name"] == name:
                return s["state"]
        raise HotrouteError(f"no route names scenario `{name}`")

    def set_scenario(self, name, state):
        """Puts scenario `name` in `state` (one that its routes name)."""
        self._check(self._admin("PUT", f"/__admin/scenarios/{urllib.parse.quote(name, safe='')}", {"state": state}))

    def _admin(self, method, path, body=None):
        # A call that changes state says it is made on purpose (see the README's Security section).
        return self.request(method, path, body=body, headers={"x-hotroute": "1"})

    @staticmethod
    def _check(res):
        if res.status != 200:
            raise HotrouteError(f"hotroute answered {res.status}:\n{res.text()}")
        return res

    def log(self):
        """What the server wrote on stderr so far (warnings, reload errors)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else self.stderr

    def stop(self):
        """Stops the server (SIGTERM: requests in flight finish) and removes the temp folder if it made one.
        Its stderr stays readable as `self.stderr`."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        if self.log_path.exists():
            self.stderr = self.log_path.read_text(errors="replace")
        self._remove_folder()

    def _remove_folder(self):
        if self._owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
