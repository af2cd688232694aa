"""A Hugging Face hub stand-in on 127.0.0.1: the URL layout and headers `huggingface_hub` uses
(`/api/models/<repo>/revision/<rev>`, `/api/models/<repo>/tree/<sha>`, `/<repo>/resolve/<rev>/<file>`
with HEAD and byte ranges; `hf_hub_download` and `snapshot_download` need no more). It can stall
the first transfers of a file half way (`stalled` is set then), so a test can kill the downloading
process there, or let the client's read time out and continue with a `Range` request. With
`ranges=False` it answers a `Range` request with the whole file (a 200), as some proxies do."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


class HubServer:
    def __init__(
        self,
        repos: dict[tuple[str, str], dict[str, bytes]],
        stall_first_download: str | None = None,
        plain: dict[str, bytes] | None = None,
        ranges: bool = True,
        spoiled: frozenset[str] = frozenset(),
        stalls: int = 1,
    ):
        """`repos` maps (repo id, revision) to {filename: content}; `plain` maps URL paths to the
        content of files served as a plain web server does (the demo sequence on GitHub). The
        files named in `spoiled` arrive with one byte changed under their true size and ETag, as
        a faulty proxy or disk would deliver them. The first `stalls` transfers of
        `stall_first_download` stall half way."""
        self.plain = plain or {}
        self.spoiled = spoiled
        self.ranges = ranges
        self.repos = repos
        self.commits = {key: hashlib.sha1(repr(key).encode()).hexdigest() for key in repos}
        self.stall_first_download = stall_first_download
        self.stalls = stalls
        self._release = threading.Event()
        self.stalled = threading.Event()  # set once the stalled transfer has sent its first half
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                server._serve(self, head=True)

            def do_GET(self) -> None:
                server._serve(self, head=False)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def release(self) -> None:
        """End the stalled transfers: their connections close, and the clients continue with a
        `Range` request."""
        self._release.set()

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _find(self, repo: str, revision: str) -> tuple[str, dict[str, bytes]] | None:
        for (name, rev), files in self.repos.items():
            if name == repo and revision in (rev, self.commits[(name, rev)]):
                return self.commits[(name, rev)], files
        return None

    def _json(self, handler: BaseHTTPRequestHandler, payload: object, head: bool) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)

    def _missing(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(404)
        handler.send_header("X-Error-Code", "EntryNotFound")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _serve(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        self.requests.append((handler.command, path, handler.headers.get("Range")))
        if path in self.plain:
            return self._send_file(handler, "", path, self.plain[path], head)
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and "revision" in parts:
            at = parts.index("revision")
            found = self._find("/".join(parts[2:at]), parts[at + 1])
            if found is None:
                return self._missing(handler)
            sha, files = found
            siblings = [{"rfilename": name} for name in files]
            return self._json(handler, {"id": "/".join(parts[2:at]), "sha": sha, "siblings": siblings}, head)
        if parts[:2] == ["api", "models"] and "tree" in parts:
            at = parts.index("tree")
            found = self._find("/".join(parts[2:at]), parts[at + 1])
            if found is None:
                return self._missing(handler)
            _, files = found
            entries = [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in files.items()
            ]
            return self._json(handler, entries, head)
        if "resolve" in parts:
            at = parts.index("resolve")
            found = self._find("/".join(parts[:at]), parts[at + 1])
            filename = "/".join(parts[at + 2 :])
            if found is None or filename not in found[1]:
                return self._missing(handler)
            sha, files = found
            return self._send_file(handler, sha, filename, files[filename], head)
        return self._missing(handler)

    def _send_file(
        self, handler: BaseHTTPRequestHandler, sha: str, name: str, data: bytes, head: bool
    ) -> None:
        etag = hashlib.sha256(data).hexdigest()
        if name in self.spoiled:
            data = data[:-1] + bytes([data[-1] ^ 1])
        start = 0
        wanted = handler.headers.get("Range")
        if wanted and wanted.startswith("bytes=") and self.ranges:
            start = int(wanted[6:].split("-")[0])
        body = data[start:]
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", sha)
        handler.send_header("ETag", f'"{etag}"')
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(len(body)))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if head:
            return
        if self.stall_first_download == name and self.stalls:
            self.stalls -= 1
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            self.stalled.set()
            self._release.wait(60)  # the transfer hangs half way until the test ends
            handler.close_connection = True
            return
        handler.wfile.write(body)
