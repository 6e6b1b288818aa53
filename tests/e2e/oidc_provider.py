"""The real OpenID provider of the end-to-end tests (tests/oidc: the certified
oidc-provider under node, on 127.0.0.1), and a person's browser walked with httpx:
follow redirects, fill the provider's login, consent and device-code forms, submit."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from bastion.sshd import free_port

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc"


@dataclass
class RunningProvider:
    url: str
    proc: subprocess.Popen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_provider(log: Path) -> RunningProvider:
    """node tests/oidc/provider.js on a free loopback port; waits for "ready"."""
    node = shutil.which("node")
    if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        if os.environ.get("BASTION_SKIP_OIDC") == "1":
            pytest.skip("node or tests/oidc/node_modules missing; BASTION_SKIP_OIDC=1")
        raise pytest.UsageError(
            "the OIDC tests need node and `npm ci --prefix tests/oidc`: run scripts/setup "
            "(or set BASTION_SKIP_OIDC=1 to skip them on purpose)"
        )
    port = free_port()
    out = open(log, "wb")  # noqa: SIM115 - kept open for the provider's life
    proc = subprocess.Popen(
        [node, "provider.js", str(port)],
        cwd=PROVIDER_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=out,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"the OIDC provider did not start: {log.read_text()}")
    return RunningProvider(line.split()[1], proc)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"),
                               "id": a.get("id", ""), "fields": {}, "buttons": []})  # fmt: skip
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name"):
            target = a.get("form")
            form = next((f for f in self.forms if target and f["id"] == target), None)
            (form or (self.forms[-1] if self.forms else {"buttons": []}))["buttons"].append(
                (a["name"], a.get("value", ""))
            )


def browse(start: str, login: str, *, callback_prefix: str = "", user_code: str = "") -> str:
    """Act as the person at a browser: sign in as ``login`` (any password), consent,
    enter ``user_code`` where asked. Stops at a redirect to ``callback_prefix`` (after
    loading it, as a browser would) and returns that URL; else the last page's text."""
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        method, url, data = "GET", start, None
        for _ in range(30):
            r = client.request(method, url, data=data)
            if r.is_redirect:
                url, method, data = urljoin(url, r.headers["location"]), "GET", None
                if callback_prefix and url.startswith(callback_prefix):
                    client.get(url)
                    return url
                continue
            parser = _Forms()
            parser.feed(r.text)
            forms = [f for f in parser.forms if f["method"].lower() == "post"]
            if r.status_code != 200 or not forms:
                return r.text
            form = forms[0]
            fields = dict(form["fields"])
            if "login" in fields:
                fields.update(login=login, password="any")
            if "user_code" in fields:
                fields["user_code"] = user_code
            buttons = [b for b in form["buttons"] if b[0] != "abort"]
            if buttons:
                fields[buttons[0][0]] = buttons[0][1]
            url, method, data = urljoin(url, form["action"]), "POST", fields
        raise AssertionError("the sign-in did not finish in 30 steps")


def wait_for_line(stream, prefix: str, timeout: float = 20) -> str:
    """Read lines of a child's output until one contains ``prefix``."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if prefix in line:
            return line
    raise AssertionError(f"no line with {prefix!r} in: {''.join(seen)}")
