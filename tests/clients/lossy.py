"""httpx transports that lose answers on purpose: the request reaches the server and is
done there, then the client sees a dropped connection, as when a network fails between
the two. `lose` names (method, path, n): the n-th such request (1-based) loses its answer."""

from __future__ import annotations

from collections import Counter

import httpx


class _Losing:
    def __init__(self, lose: set[tuple[str, str, int]]) -> None:
        self.lose = lose
        self.seen: Counter[tuple[str, str]] = Counter()
        self.lost: list[tuple[str, str, int]] = []
        self.sent: Counter[tuple[str, str]] = Counter()

    def _should_lose(self, request: httpx.Request) -> bool:
        name = (request.method, request.url.path)
        self.seen[name] += 1
        self.sent[name] += 1
        what = (*name, self.seen[name])
        if what in self.lose:
            self.lost.append(what)
            return True
        return False


class LossyTransport(_Losing, httpx.BaseTransport):
    def __init__(self, lose: set[tuple[str, str, int]]) -> None:
        super().__init__(lose)
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        lose = self._should_lose(request)
        answer = self.inner.handle_request(request)
        if lose:
            answer.read()
            answer.close()
            raise httpx.ReadError("the answer was lost (test)", request=request)
        return answer

    def close(self) -> None:
        self.inner.close()


class AsyncLossyTransport(_Losing, httpx.AsyncBaseTransport):
    def __init__(self, lose: set[tuple[str, str, int]]) -> None:
        super().__init__(lose)
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lose = self._should_lose(request)
        answer = await self.inner.handle_async_request(request)
        if lose:
            await answer.aread()
            await answer.aclose()
            raise httpx.ReadError("the answer was lost (test)", request=request)
        return answer

    async def aclose(self) -> None:
        await self.inner.aclose()
