"""hotroute as a mock API from Python: start `hotroute --port 0` on routes given as TOML text or a file, talk to
it, check what it received, stop it.

The binary is the one this package installed into the environment (its `bin/` or `Scripts/`), unless $HOTROUTE_BIN
names another. The pytest plugin (hotroute.pytest_plugin, loaded by pytest on its own) wraps this in a fixture.

    server = Hotroute('[[route]]\\npath = "/hello"\\nbody = "Hello World"\\n')
    assert server.get("/hello").text() == "Hello World"
    server.verify("GET", "/hello")
    server.stop()  # SIGTERM; the temp folder holding routes.toml is removed
"""

import json
import os
import pathlib
import selectors
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import urllib.error
import urllib.parse
import urllib.request

EXE = "hotroute.exe" if sys.platform == "win32" else "hotroute"
START_TIMEOUT = 10  # seconds the server may take to print its `listening on` line
# State-changing admin calls: the header that tells the server a script, not another site's page, sends them.
_ADMIN_HEADERS = {"X-Hotroute": "1"}

# Loopback needs no proxy, whatever http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

__all__ = ["Hotroute", "HotrouteError", "Response", "find_hotroute"]


class HotrouteError(RuntimeError):
    """hotroute could not be found or did not start; the message says why, with the server's own error text."""


def _is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_hotroute(env=None):
    """The path of the hotroute binary: $HOTROUTE_BIN, then the one installed with this package (the scripts folder
    of this Python environment, then of the user scheme for `pip install --user`), then PATH. Raises HotrouteError
    listing every place tried when there is none. `env` (default os.environ) is only for tests."""
    env = os.environ if env is None else env
    if env.get("HOTROUTE_BIN"):
        if _is_executable(env["HOTROUTE_BIN"]):
            return env["HOTROUTE_BIN"]
        raise HotrouteError(
            f"HOTROUTE_BIN is {env['HOTROUTE_BIN']}, which is not an executable file: "
            "unset HOTROUTE_BIN to use the binary installed with the hotroute package"
        )
    installed = [pathlib.Path(sysconfig.get_path("scripts")) / EXE]
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        installed.append(pathlib.Path(sysconfig.get_path("scripts", user_scheme)) / EXE)
    for path in installed:
        if _is_executable(path):
            return str(path)
    found = shutil.which(EXE, path=env.get("PATH", ""))
    if found:
        return found
    raise HotrouteError(
        f"hotroute binary not found. Tried: $HOTROUTE_BIN (not set), {', '.join(map(str, installed))}, and `{EXE}` "
        "on PATH. Reinstall the package (`pip install --force-reinstall hotroute`) or set HOTROUTE_BIN to its path."
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
    `binary` is the binary to run (default: find_hotroute()). With `file=PATH` instead of TOML text, the server reads
    that file where it is (and reloads when it is saved).
    """

    def __init__(self, routes_toml=None, folder=None, binary=None, file=None):
        if (routes_toml is None) == (file is None):
            raise HotrouteError("give the routes either as TOML text or as file=PATH (one of the two)")
        if file is not None and not pathlib.Path(file).is_file():
            raise HotrouteError(f"route file {file} does not exist: give the path of a routes.toml")
        binary = binary or find_hotroute()
        self.stderr = ""  # the server's stderr, once it has stopped
        self._owns_folder = folder is None
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="hotroute-")) if folder is None else pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if file is None:
            routes = self.folder / "routes.toml"
            routes.write_text(routes_toml)
        else:
            # The user's own file, served where it is: its includes and body files resolve, and saving it reloads.
            routes = pathlib.Path(file).resolve()
        self.routes_path = routes
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

    def url(self, path=""):
        """The address of `path` on this server, for the code under test: `url("/users/7")`."""
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
        """Empties the journal."""
        self.request("DELETE", "/__admin/requests", headers=_ADMIN_HEADERS)

    def reset(self):
        """The server as if no request had come: the journal, the coverage counts, sequence positions and scenarios
        back to their start (the server's own `POST /__admin/reset`)."""
        res = self.request("POST", "/__admin/reset", headers=_ADMIN_HEADERS)
        if res.status != 200:
            raise HotrouteError(f"hotroute refused the reset (HTTP {res.status}):\n{res.text()}")

    def add_routes(self, routes_toml):
        """Appends routes (TOML) to the route file and reloads now; raises HotrouteError with the server's error text
        when the new file does not load (the old routes keep serving, and the file is put back)."""
        before = self.routes_path.read_text()
        self.routes_path.write_text(before.rstrip("\n") + "\n\n" + routes_toml)
        res = self.request("POST", "/__admin/reload", headers=_ADMIN_HEADERS)
        if res.status != 200:
            self.routes_path.write_text(before)
            raise HotrouteError(f"the added routes do not load (HTTP {res.status}):\n{res.text()}")

    def verify(self, method, path, times=1, query=None):
        """Asserts that the server received `method path` exactly `times` times (`times=None`: at least once),
        with this query string when `query` is given. The failure lists every request the server did receive."""
        received = self.requests()
        hits = [
            r for r in received
            if r["method"] == method.upper() and r["path"] == path and (query is None or r.get("query") == query)
        ]
        if (len(hits) >= 1) if times is None else (len(hits) == times):
            return hits
        want = "at least once" if times is None else f"{times} time{'s' if times != 1 else ''}"
        what = f"{method.upper()} {path}" + (f"?{query}" if query is not None else "")
        lines = [f"  {r['method']} {r['path']}" + (f"?{r['query']}" if r.get("query") else "") + f" -> {r['status']}"
                 for r in received]
        seen = "\n".join(lines) if lines else "  (nothing)"
        raise AssertionError(f"expected {what} {want}, got it {len(hits)} time(s); the server received:\n{seen}")

    def isolate(self, test_id, header="x-test-id"):
        """A view of this server for one test, on a server whose route file sets
        `[server] isolate = "header:x-test-id"`: every request it sends carries `header: test_id`, so the server keeps
        that test's sequences, scenarios, resource data and journal apart from every other test's. Share one server
        across a test session and give each test its own view (`isolate(request.node.nodeid)`).

        The code under test sends the same header: `view.headers` is the dict to add to its requests."""
        return Isolated(self, test_id, header)

    def coverage(self):
        """Routes never hit and requests no route answered."""
        return self.get("/__admin/coverage").json()

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


class Isolated:
    """One test's partition of a shared server (see `Hotroute.isolate`): the same methods as Hotroute, scoped to it.

    `requests()`, `verify()` and `reset()` see and reset only this test's requests and state."""

    def __init__(self, server, test_id, header="x-test-id"):
        self.server, self.test_id, self.header = server, str(test_id), header
        self.headers = {header: self.test_id}
        self.base_url = server.base_url

    def url(self, path=""):
        return self.server.url(path)

    def request(self, method, path, body=None, headers=None):
        return self.server.request(method, path, body=body, headers={**self.headers, **(headers or {})})

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def _query(self):
        return urllib.parse.urlencode({"isolate": self.test_id})

    def requests(self):
        """This test's requests, oldest first."""
        return self.server.get(f"/__admin/requests?bodies=true&limit=1000&{self._query()}").json()["requests"]

    def reset(self):
        """This test's state back to its start (sequences, scenarios, resource data, its journal); other tests'
        stay as they are."""
        res = self.server.request("POST", f"/__admin/reset?{self._query()}", headers=_ADMIN_HEADERS)
        if res.status != 200:
            raise HotrouteError(f"hotroute refused the reset (HTTP {res.status}):\n{res.text()}")

    verify = Hotroute.verify
