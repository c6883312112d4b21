"""Open an HTML report in headless Chromium and check that a reader would see it: every figure loads and the
page logs no error. Prints what it found as JSON; exit status 1 when something is wrong, 2 when Chromium
could not be driven.

    .venv/bin/python scripts/check_report.py report.html|report.zip [--chromium PATH] [--timeout SECONDS]

A Snakemake report (`snakemake --report report.html`) is a single-page app that draws a result only when it
is opened, so for every result the check does what the report's own "view" button does (``app.setView``)
and then reads the page: each image result must be shown as an ``<img>`` whose ``naturalWidth`` is above 0;
each HTML result (the summary page) is shown in its frame and its tables and headings are read. Any other
page (the summary page itself, say) is checked as it is: every ``<img>`` of the document must load.

Errors are everything the page reports through the DevTools protocol: uncaught exceptions
(``Runtime.exceptionThrown``), ``console.error``/``console.assert`` calls, and browser log entries of level
error (a resource that failed to load, for instance). Captions with a docutils warning (a reST error in a
``workflow/report/*.rst`` caption) are reported too.

Chromium is driven over ``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-terminated JSON), so no
port and no websocket library is needed, and everything is bounded by ``--timeout``: the browser is killed
when it runs out.
"""

from __future__ import annotations

import argparse
import html.parser
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

# Runs in the page. For a Snakemake report (globals `results`, `categories`, `app`): shows every result the
# way the report's view button does and measures it; otherwise measures the document's own images.
CHECK_JS = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const waitFor = async (fn, ms) => {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) { const v = fn(); if (v) return v; await sleep(25); }
    return null;
  };
  const measure = async img => {
    if (!img) return {found: false, decoded: false, natural_width: 0, natural_height: 0};
    let decoded = true;
    try { await img.decode(); } catch (e) { decoded = false; }  // a file that is not a whole image
    return {found: true, decoded, natural_width: img.naturalWidth, natural_height: img.naturalHeight};
  };
  const readHtml = doc => ({
    tables: doc.querySelectorAll("table").length,
    table_ids: Array.from(doc.querySelectorAll("table[id]")).map(t => t.id),
    headings: Array.from(doc.querySelectorAll("h1, h2")).map(h => h.textContent.trim()),
  });
  const isReport = typeof results === "object" && typeof categories === "object" && typeof app === "object"
                   && app !== null;
  if (!isReport) {
    const images = [];
    for (const img of Array.from(document.images)) images.push({path: img.getAttribute("src"), ...await measure(img)});
    return {kind: "page", images, html: [{path: location.href, ...readHtml(document)}], captions: {}, categories: []};
  }
  const out = {kind: "snakemake", images: [], html: [], captions: {}, categories: Object.keys(categories)};
  for (const [path, entry] of Object.entries(results)) {
    out.captions[path] = entry.caption;
    const mime = entry.mime_type || "";
    if (mime.startsWith("image/")) {
      app.setView({content: "img", contentPath: entry.data_uri, resultPath: path});
      const img = await waitFor(() => Array.from(document.querySelectorAll("#app img"))
                                        .find(i => i.getAttribute("src") === entry.data_uri), 5000);
      out.images.push({path, mime, ...await measure(img)});
    } else if (mime === "text/html") {
      app.setView({content: "html", contentPath: entry.data_uri, resultPath: path});
      const frame = await waitFor(() => Array.from(document.querySelectorAll("#app iframe"))
                                          .find(f => f.getAttribute("src") === entry.data_uri), 5000);
      const item = {path, src: entry.data_uri, shown: frame !== null};
      if (entry.data_uri.startsWith("data:")) {  // embedded (report.html); a zip report's files are read from disk
        const text = await (await fetch(entry.data_uri)).text();
        Object.assign(item, readHtml(new DOMParser().parseFromString(text, "text/html")));
      }
      out.html.push(item);
    }
  }
  for (const category of Object.keys(categories)) { app.showCategory(category); await sleep(50); }
  return out;
})()
"""


class BrowserError(RuntimeError):
    """Chromium could not be started or driven within the time allowed."""


def find_chromium(explicit: str | None = None) -> str | None:
    """The browser to use: `explicit`, $NETDYN_CHROMIUM, or chromium / chromium-browser on PATH."""
    for candidate in (explicit, os.environ.get("NETDYN_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate:
            return candidate
    return None


class Chromium:
    """A headless Chromium driven over the DevTools pipe; every wait ends at `deadline` (time.monotonic)."""

    def __init__(self, binary: str, deadline: float, log_path: Path):
        self.deadline = deadline
        self.profile = tempfile.mkdtemp(prefix="netdyn-chromium-")
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", "--window-size=1400,1000", "about:blank"]
        # the pipe is the browser's fds 3 (commands in) and 4 (replies out): our stdin/stdout pipes, moved there
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(["bash", "-c", 'exec "$@" 3<&0 4>&1 0</dev/null 1>/dev/null', "chromium", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self._send("Browser.close", {})
                    self.proc.wait(timeout=5)
                except (BrowserError, OSError, subprocess.TimeoutExpired):
                    pass
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        finally:
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def _send(self, method: str, params: dict, session: str | None = None) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\0")
            self.proc.stdin.flush()
        except BrokenPipeError as e:
            raise BrowserError(f"Chromium exited (status {self.proc.poll()}) before {method}") from e
        return self.next_id

    def _receive(self, until: float) -> dict | None:
        """The next message, or None when `until` passes first."""
        while b"\0" not in self.buffer:
            left = min(until, self.deadline) - time.monotonic()
            if left <= 0:
                if time.monotonic() >= self.deadline:
                    raise BrowserError("timed out talking to Chromium")
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed its pipe (status {self.proc.poll()})")
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send a command and return its result; events that arrive meanwhile are kept in `events`."""
        wanted = self._send(method, params or {}, session)
        while True:
            message = self._receive(self.deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_event(self, method: str, session: str) -> None:
        while not any(e["method"] == method and e.get("sessionId") == session for e in self.events):
            message = self._receive(self.deadline)
            if message and "method" in message:
                self.events.append(message)

    def drain(self, seconds: float) -> None:
        """Collect the events of the next `seconds` (late console messages)."""
        until = time.monotonic() + seconds
        while (message := self._receive(until)) is not None:
            if "method" in message:
                self.events.append(message)


def _remote_text(obj: dict) -> str:
    return str(obj.get("value", obj.get("description", obj.get("type", ""))))


def page_errors(events: list[dict]) -> list[str]:
    """Uncaught exceptions, console.error/assert calls and error-level browser log entries, as text."""
    errors = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append("exception: " + (details.get("exception", {}).get("description") or details.get("text", "")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(f"console.{params['type']}: " + " ".join(_remote_text(a) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            errors.append(f"log ({entry.get('source', '')}): {entry.get('text', '')} {entry.get('url', '')}".strip())
    return errors


class _HtmlOutline(html.parser.HTMLParser):
    """Tables, table ids and h1/h2 texts of an HTML file (a zip report's HTML results, read from disk)."""

    def __init__(self):
        super().__init__()
        self.tables, self.table_ids, self.headings, self._heading = 0, [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables += 1
            self.table_ids += [v for k, v in attrs if k == "id"]
        elif tag in ("h1", "h2"):
            self._heading = ""

    def handle_data(self, data):
        if self._heading is not None:
            self._heading += data

    def handle_endtag(self, tag):
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append(self._heading.strip())
            self._heading = None


def check_report(path: str | Path, chromium: str, timeout: float = 120.0) -> dict:
    """Load `path` in headless Chromium and measure it (see the module docstring). A ``.zip`` (``snakemake
    --report report.zip``) is unpacked first and its report.html checked, figures read from its data/
    folder. Returns {kind, images, html, captions, categories, console_errors, problems}."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(path)
    if path.suffix == ".zip":
        with tempfile.TemporaryDirectory() as unpacked:
            with zipfile.ZipFile(path) as archive:
                archive.extractall(unpacked)
            pages = sorted(Path(unpacked).glob("*/report.html")) or sorted(Path(unpacked).glob("report.html"))
            if not pages:
                raise FileNotFoundError(f"{path}: no report.html inside")
            return check_report(pages[0], chromium, timeout)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory() as tmp:
        browser = Chromium(chromium, deadline, Path(tmp) / "chromium.log")
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                browser.call(f"{domain}.enable", {}, session)
            browser.call("Page.navigate", {"url": path.as_uri()}, session)
            browser.wait_event("Page.loadEventFired", session)
            reply = browser.call("Runtime.evaluate", {"expression": CHECK_JS, "awaitPromise": True,
                                                      "returnByValue": True}, session)
            if "exceptionDetails" in reply:
                raise BrowserError(f"the check script failed: {reply['exceptionDetails']}")
            found = reply["result"]["value"]
            browser.drain(0.5)
        except BrowserError as e:
            log = (Path(tmp) / "chromium.log").read_text(errors="replace")[-2000:]
            raise BrowserError(f"{e}\nChromium's stderr (end):\n{log}") from None
        finally:
            browser.close()
    for item in found["html"]:
        if "tables" not in item:  # a zip report's HTML result: a file beside report.html
            outline = _HtmlOutline()
            outline.feed((path.parent / item["src"]).read_text(encoding="utf-8", errors="replace"))
            item.update(tables=outline.tables, table_ids=outline.table_ids, headings=outline.headings)
    found["console_errors"] = page_errors(browser.events)
    problems = [f"figure does not load (naturalWidth {i['natural_width']}, decoded: {i['decoded']}): {i['path']}"
                for i in found["images"] if not (i["natural_width"] > 0 and i["decoded"])]
    problems += [f"page error: {e}" for e in found["console_errors"]]
    problems += [f"caption with a docutils warning: {p}" for p, c in found["captions"].items()
                 if "system-message" in (c or "")]
    problems += [f"HTML result not shown: {h['path']}" for h in found["html"] if h.get("shown") is False]
    found["problems"] = problems
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="HTML file (a Snakemake report, or any page) or a zip report")
    parser.add_argument("--chromium", help="browser binary (default: $NETDYN_CHROMIUM, chromium on PATH)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole check (default 120)")
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("check_report: no chromium (install it: bash scripts/setup_chromium.sh)", file=sys.stderr)
        return 2
    try:
        found = check_report(args.report, chromium, args.timeout)
    except BrowserError as e:
        print(f"check_report: {e}", file=sys.stderr)
        return 2
    found = {k: v for k, v in found.items() if k != "captions"} | {"captions": found["captions"]}
    print(json.dumps(found, indent=1, ensure_ascii=False))
    for problem in found["problems"]:
        print(f"check_report: {problem}", file=sys.stderr)
    return 1 if found["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
