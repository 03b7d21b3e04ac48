"""Drive Debian's headless `chromium` over the DevTools protocol, with aiohttp's websocket client.

Enough for the report tests: open a file, evaluate JavaScript, collect script errors (uncaught
exceptions, console errors, failed loads), take a screenshot. No extra dependency and no browser
download: the browser is the system package (`apt-get install chromium`).
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.events: dict[str, asyncio.Event] = {}
        self.errors: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future and not future.done():
                    if "error" in data:
                        future.set_exception(RuntimeError(f"DevTools: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                self.errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                self.errors.append("log: " + params["entry"]["text"])
            if method in self.events:
                self.events[method].set()

    async def send(self, method: str, **params) -> dict:
        message_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[message_id] = future
        await self.ws.send_str(json.dumps({"id": message_id, "method": method, "params": params}))
        return await asyncio.wait_for(future, 60)

    async def goto(self, url: str) -> None:
        loaded = self.events["Page.loadEventFired"] = asyncio.Event()
        result = await self.send("Page.navigate", url=url)
        if "errorText" in result:
            raise RuntimeError(f"could not open {url}: {result['errorText']}")
        if "loaderId" in result:  # a new document (a change of #hash alone loads nothing)
            await asyncio.wait_for(loaded.wait(), 60)

    async def evaluate(self, expression: str):
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path, width: int = 1200, height: int | None = None) -> Path:
        """A PNG of the page, `height` pixels tall (default: the whole page)."""
        height = height or int(await self.evaluate("document.documentElement.scrollHeight"))
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@asynccontextmanager
async def open_browser(executable: str | None = None):
    """A fresh headless browser and one page; errors on the page are collected in `page.errors`."""
    executable = executable or find_chromium()
    if executable is None:
        raise FileNotFoundError("chromium not found (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="lema-chromium-")
    process = subprocess.Popen(
        [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        port = await asyncio.wait_for(asyncio.to_thread(_devtools_port, process), 60)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json(content_type=None)
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with session.ws_connect(url, max_msg_size=0) as ws:
                page = Page(ws)
                for domain in ("Page", "Runtime", "Log"):
                    await page.send(f"{domain}.enable")
                try:
                    yield page
                finally:
                    page.reader.cancel()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_port(process: subprocess.Popen) -> int:
    lines = []
    for raw in process.stderr:
        line = raw.decode("utf-8", "replace")
        lines.append(line)
        match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if match:  # keep reading in the background, so a chatty browser never blocks on a full pipe
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return int(match.group(1))
    raise RuntimeError("chromium exited before it listened:\n" + "".join(lines[-20:]))
