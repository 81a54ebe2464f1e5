"""``bin/serve``: a local web page to stylise photos in the browser."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from collections.abc import Sequence

from jaxstyle.cli.common import ArgumentParser, cli_entry
from jaxstyle.errors import OptionError

DESCRIPTION = """\
Serve a web page to stylise photos: upload a photo, pick a style (a shipped transform model, or
any painting: your own style image or a built-in one, for the arbitrary method, seconds, or the
slower Gatys method, minutes), watch the progress bar, download the result as PNG.

Everything stays on this computer and in memory: uploads are never written to disk, and the page
uses no outside assets. Jobs run one at a time in a background thread; the last 16 results are kept.
By default only this computer can reach the page (127.0.0.1); there is no login, so think twice
before --host 0.0.0.0.
"""

EPILOG = """\
examples:
  bin/serve                          then open http://127.0.0.1:8000/
  bin/serve --port 8080 --gatys-iterations 100
  bin/serve --decoders runs/dec/decoders.msgpack   the arbitrary method with decoders you trained
"""


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from jaxstyle import serve
    from jaxstyle.cli.options import add_options

    p = ArgumentParser(prog="serve", description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this computer only)")
    p.add_argument("--port", type=port_number, default=8000, help="TCP port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=serve.Limits.max_upload_bytes / serve.MB,
                   help="largest upload (photo plus style image) in MB (default: %(default)g)")
    # --max-pixels, --gatys-size, --gatys-iterations, --max-side: from the Limits fields (defaults, help).
    add_options(lambda group: p, serve.Limits)
    p.add_argument("--decoders", metavar="NAME|FILE", default=None,
                   help="arbitrary: a shipped decoder set or a decoder file from bin/train --decoders "
                        "(default: the shipped set; if it is missing, the page works without arbitrary)")
    return p


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; a port in use or a bad address is an OptionError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise OptionError(f"--host {host}: not an address of this computer ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise OptionError(f"port {port} on {host} is already in use; pick another with --port") from None
        raise OptionError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port/`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import uvicorn

    from jaxstyle import serve
    from jaxstyle.methods.arbitrary import vgg_decoders

    if not args.max_upload_mb > 0:
        raise OptionError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    # Decoders asked for by name must load (a one-line error, exit 2); the shipped default may be missing.
    decoders = None if args.decoders is None else vgg_decoders.load_decoders(args.decoders)
    app = serve.create_app(max_upload_bytes=round(args.max_upload_mb * serve.MB), max_pixels=args.max_pixels,
                           max_side=args.max_side, gatys_size=args.gatys_size,
                           gatys_iterations=args.gatys_iterations, decoders=decoders)
    sock = bind(args.host, args.port)
    print(f"jaxstyle: open {url_of(sock)} in a browser (Ctrl-C to stop)", flush=True)
    for method, why in app.state.unavailable.items():
        print(f"serve: warning: method {method} is off: {why}", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"serve: warning: --host {args.host} lets other computers use this page (there is no login)",
              file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    print("jaxstyle: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
