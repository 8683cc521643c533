"""The official msgraph-sdk (a client none of us wrote) reads users and presences from the local tenant."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.communications.get_presences_by_user_id.get_presences_by_user_id_post_request_body import (
    GetPresencesByUserIdPostRequestBody,
)
from msgraph.generated.models.user_collection_response import UserCollectionResponse
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory
from msgraph_core.tasks.page_iterator import PageIterator

from sync.emulator.model.tenant import Tenant
from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
APP_ID = "11111111-2222-4333-8444-555555555555"
APP_SECRET = "contoso-app-secret-value"


class EmulatorTokenProvider(AccessTokenProvider):
    """Hands the SDK a token the local tenant issued, for the local tenant's host only."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
        return self.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator(["127.0.0.1"])


@asynccontextmanager
async def sdk_client(emulator: EmulatorServer, ssl_context: ssl.SSLContext, token: str
                     ) -> AsyncIterator[GraphServiceClient]:
    """A GraphServiceClient rooted at the local tenant's /v1.0, trusting its CA; closes its connections."""
    # msgraph_core's transport wrapper does not forward aclose(), so the pool is closed here by hand.
    transport = httpx.AsyncHTTPTransport(verify=ssl_context)
    http_client = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=transport, timeout=30))
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(EmulatorTokenProvider(token)),
                                  client=http_client)
    adapter.base_url = f"{emulator.base_url}/v1.0"
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await transport.aclose()


@pytest.fixture()
def token(http: httpx.Client) -> str:
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": APP_ID, "client_secret": APP_SECRET, "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture()
def contoso(emulator: EmulatorServer) -> Tenant:
    return emulator.state.world.tenants[CONTOSO]


def test_sdk_pages_through_users(emulator: EmulatorServer, ssl_context: ssl.SSLContext, token: str,
                                 contoso: Tenant) -> None:
    async def run() -> tuple[list[str], list[str], int]:
        config = RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            top=40, select=["id", "userPrincipalName", "mail"]))
        async with sdk_client(emulator, ssl_context, token) as client:
            page = await client.users.get(request_configuration=config)
            assert page is not None
            manual = [u.id for u in page.value or [] if u.id]
            pages = 1
            while page is not None and page.odata_next_link:
                page = await client.users.with_url(page.odata_next_link).get()
                assert page is not None
                manual += [u.id for u in page.value or [] if u.id]
                pages += 1
            first = await client.users.get(request_configuration=config)
            iterated: list[str] = []

            def collect(user: Any) -> bool:
                iterated.append(user.id)
                return True

            iterator = PageIterator(first, client.request_adapter)
            iterator.object_type = UserCollectionResponse  # the iterator must know what a page parses into
            await iterator.iterate(collect)
        return manual, iterated, pages

    manual, iterated, pages = asyncio.run(run())
    assert sorted(manual) == sorted(contoso.users)
    assert sorted(iterated) == sorted(contoso.users)
    assert pages == -(-len(contoso.users) // 40)


def test_sdk_reads_presences_and_a_user(emulator: EmulatorServer, ssl_context: ssl.SSLContext, token: str,
                                        contoso: Tenant) -> None:
    licensed = sorted(u.id for u in contoso.users.values() if u.teams_licensed)[:25]
    unlicensed = next(u for u in contoso.users.values() if not u.teams_licensed)
    guest = next(u for u in contoso.users.values() if "#EXT#" in u.user_principal_name)

    async def run() -> tuple[dict[str, tuple[str | None, str | None]], str | None]:
        async with sdk_client(emulator, ssl_context, token) as client:
            body = GetPresencesByUserIdPostRequestBody(ids=[*licensed, unlicensed.id])
            result = await client.communications.get_presences_by_user_id.post(body)
            assert result is not None and result.value is not None
            got = {p.id: (p.availability, p.activity) for p in result.value if p.id}
            # The SDK percent-encodes the "#" of a guest UPN in the path, as Graph requires.
            user = await client.users.by_user_id(guest.user_principal_name).get()
        return got, user.id if user else None

    got, guest_id = asyncio.run(run())
    assert set(got) == {*licensed, unlicensed.id}
    assert got[unlicensed.id] == ("PresenceUnknown", "PresenceUnknown")
    assert all(a and a[0].isupper() for a, _ in got.values())
    assert guest_id == guest.id


def test_sdk_surfaces_graph_errors(emulator: EmulatorServer, ssl_context: ssl.SSLContext, token: str) -> None:
    async def run() -> APIError:
        async with sdk_client(emulator, ssl_context, token) as client:
            try:
                await client.users.by_user_id("nobody@contoso.com").get()
            except APIError as exc:
                return exc
        raise AssertionError("a missing user must raise")

    exc = asyncio.run(run())
    assert exc.response_status_code == 404
    assert getattr(exc, "error", None) is not None and exc.error.code == "Request_ResourceNotFound"
