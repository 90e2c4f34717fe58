"""A real ASGI server on a free loopback port, run in a thread: the base of every fake upstream and receiver
the tests talk to over sockets (`FakeUpstream`, `ApiUpstream`, `ModelApis`, `OtlpReceiver`).

    class MyFake(LoopbackServer):
        def __init__(self) -> None:
            super().__init__(my_asgi_app, name="my-fake")

    with MyFake() as fake:
        httpx.get(fake.url + "/...")

`start` returns once uvicorn reports it is listening (an event, not a sleep); `stop` asks it to exit and
joins the thread.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        await super().startup(sockets)  # type: ignore[arg-type]
        self._started_event.set()


class LoopbackServer:
    def __init__(self, app: ASGIApp, name: str, http: str = "h11", lifespan: str = "on") -> None:
        self._name = name
        self._started = threading.Event()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, http=http, log_config=None, access_log=False, lifespan=lifespan
        )
        self._server = _Server(config, self._started)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError(f"{self._name} did not start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
