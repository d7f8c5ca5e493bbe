"""A real LSP client (pytest-lsp, on pygls) driving `bpsc lsp` over stdio.

The server binary is $BPSC_BIN (tests/lsp_client.rs sets it to the one cargo built).
"""

import asyncio
import os
import pathlib
import sys

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
BPSC = os.environ.get("BPSC_BIN") or str(ROOT / "target" / "debug" / "bpsc")


def uri(path: pathlib.Path) -> str:
    return path.resolve().as_uri()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[BPSC, "lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                text_document=types.TextDocumentClientCapabilities(
                    hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
                    completion=types.CompletionClientCapabilities(
                        completion_item=types.ClientCompletionItemOptions(documentation_format=[types.MarkupKind.Markdown])
                    ),
                    publish_diagnostics=types.PublishDiagnosticsClientCapabilities(related_information=True),
                )
            ),
            root_uri=uri(ROOT),
        )
    )
    yield
    await lsp_client.shutdown_session()


async def open_and_wait(client: LanguageClient, path: pathlib.Path, text: str | None = None, timeout: float = 10.0):
    """Open `path` (with `text` instead of what is on disk, if given) and return the
    diagnostics published for it."""
    u = uri(path)
    client.diagnostics.pop(u, None)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=u, language_id="bps", version=1, text=path.read_text() if text is None else text)
        )
    )
    return await wait_diagnostics(client, u, timeout)


async def wait_diagnostics(client: LanguageClient, u: str, timeout: float = 10.0):
    async def loop():
        while u not in client.diagnostics:
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        return client.diagnostics[u]

    return await asyncio.wait_for(loop(), timeout)


def pos_of(text: str, needle: str, nth: int = 0, delta: int = 0) -> types.Position:
    """LSP position (UTF-16 character) of the `nth` occurrence of `needle`, plus `delta`."""
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    i += delta
    line = text.count("\n", 0, i)
    col = i - (text.rfind("\n", 0, i) + 1)
    prefix = text[i - col : i]
    return types.Position(line=line, character=len(prefix.encode("utf-16-le")) // 2)
