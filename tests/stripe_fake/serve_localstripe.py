"""Run localstripe, a stateful fake Stripe (PyPI `localstripe`, GPL-3.0: a test-only
dependency), on 127.0.0.1:PORT with its state in memory only.

    python tests/stripe_fake/serve_localstripe.py PORT

Started as a subprocess by the `localstripe` fixture (tests/stripe_fake/conftest.py), never
imported by tabkeeper or by the tests' own process. localstripe's own command listens on
every address and keeps its state in /tmp/localstripe.pickle, shared by all runs; here it
listens on the loopback only and writes nothing, so the SQLite and PostgreSQL runs of
`make test` each have their own. The line "Running on ..." on stdout says it is ready.
"""

from __future__ import annotations

import sys

from aiohttp import web
from localstripe import resources, server


def main(port: int) -> None:
    resources.store.dump_to_disk = lambda: None  # type: ignore[method-assign]
    web.run_app(
        server.app,
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=lambda line: print(line, flush=True),
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
