"""tabkeeper-client: the tabkeeper billing API from Python, sync and async, on httpx.

from tabkeeper_client import Client
with Client("tk_…", "https://billing.example.com") as client:
    client.events.track("call.ended", "acme", agent="bot",
                        properties={"duration_seconds": 93})
"""

from tabkeeper_client._http import NO_RETRY, ApiError, Retry
from tabkeeper_client.client import AsyncClient, Client
from tabkeeper_client.webhooks import WebhookVerificationError, verify

__all__ = [
    "NO_RETRY",
    "ApiError",
    "AsyncClient",
    "Client",
    "Retry",
    "WebhookVerificationError",
    "verify",
]
__version__ = "0.1.0"
