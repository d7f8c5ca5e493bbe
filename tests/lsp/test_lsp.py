"""End-to-end tests of `bpsc lsp` with a real LSP client (pytest-lsp / pygls).

Each test starts the server, opens documents of examples/drp (with unsaved edits where
needed: the buffers override the disk, nothing is written) and checks what comes back.
"""

import pathlib

from lsprotocol import types
from pytest_lsp import LanguageClient

from conftest import ROOT, open_and_wait, pos_of, uri, wait_diagnostics

DRP = ROOT / "examples" / "drp"
CAMPAIGN = DRP / "drp.bps"
PIPELINE = DRP / "pipeline.bps"
SITES = DRP / "sites.bps"


def td(path: pathlib.Path) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri(path))


def rng(text: str, needle: str, nth: int = 0, length: int | None = None) -> types.Range:
    start = pos_of(text, needle, nth)
    end = pos_of(text, needle, nth, len(needle) if length is None else length)
    return types.Range(start=start, end=end)


def broken_campaign() -> str:
    text = CAMPAIGN.read_text()
    text = text.replace("  memory            = 2GiB", "  memroy            = 2GiB", 1)  # E203, did you mean
    text = text.replace("  cpus              = 1\n", "  cpus              = 1\n  cpus = 4\n", 1)  # E202, related info
    text = text.replace("  site     = s3df", "  site     = s3dff", 1)  # E201, did you mean
    text = text.replace("  priority = 50", "  priority = = 50", 1)  # E100: a syntax error mid-edit
    return text


async def test_broken_example_diagnostics_ranges_codes_and_related(client: LanguageClient):
    text = broken_campaign()
    diags = await open_and_wait(client, CAMPAIGN, text)
    by_code = {d.code: d for d in diags}
    assert {"E100", "E201", "E202", "E203"} <= set(by_code), [(d.code, d.message) for d in diags]
    assert all(d.source == "bpsc" for d in diags)

    e203 = by_code["E203"]
    assert e203.range == rng(text, "memroy")
    assert e203.severity == types.DiagnosticSeverity.Error
    assert "did you mean `memory`" in e203.message

    e201 = by_code["E201"]
    assert e201.range == rng(text, "s3dff")

    e202 = by_code["E202"]
    assert e202.range == rng(text, "cpus", 1)
    assert e202.related_information, "E202 points at the first setting"
    rel = e202.related_information[0].location
    assert rel.uri == uri(CAMPAIGN)
    assert rel.range.start == pos_of(text, "cpus              = 1")

    e100 = by_code["E100"]
    assert e100.range.start == pos_of(text, "= 50")

    # The quick fix for the typo: replace `memroy` with `memory`.
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=td(CAMPAIGN),
            range=e203.range,
            context=types.CodeActionContext(diagnostics=[e203]),
        )
    )
    fixes = [a for a in actions if isinstance(a, types.CodeAction)]
    assert fixes, actions
    edits = fixes[0].edit.changes[uri(CAMPAIGN)]
    assert list(edits) == [types.TextEdit(range=rng(text, "memroy"), new_text="memory")]
    assert fixes[0].kind == types.CodeActionKind.QuickFix

    # The file is broken, yet the parts that parse still answer.
    hover = await client.text_document_hover_async(types.HoverParams(text_document=td(CAMPAIGN), position=pos_of(text, "detector where")))
    assert hover is not None and "8 values" in hover.contents.value
    loc = await client.text_document_definition_async(types.DefinitionParams(text_document=td(CAMPAIGN), position=pos_of(text, "drp with", delta=1)))
    assert loc and loc[0].uri == uri(PIPELINE)


async def test_diagnostics_follow_changes_and_utf16(client: LanguageClient):
    text = "bps 1\n# \u00e9t\u00e9 \U0001F600\ndefaults { software = container(\"\U0001F600\"), memroy = 1GiB }\n"
    path = DRP / "scratch_utf16.bps"  # never written: the buffer is all the server sees
    diags = await open_and_wait(client, path, text)
    e203 = [d for d in diags if d.code == "E203"]
    assert e203 and e203[0].range == rng(text, "memroy")
    # 😀 is two UTF-16 units: `memroy` starts at character 47, not 46.
    assert e203[0].range.start.character == len('defaults { software = container("') + 2 + len('"), ')

    # Fix it with an incremental change: the diagnostics are published again, now empty.
    client.diagnostics.pop(uri(path), None)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri(path), version=2),
            content_changes=[types.TextDocumentContentChangePartial(range=e203[0].range, text="memory")],
        )
    )
    diags = await wait_diagnostics(client, uri(path))
    assert list(diags) == []


async def test_hover_setting_override_chain_dimension_and_dataset(client: LanguageClient):
    text = CAMPAIGN.read_text()
    await open_and_wait(client, CAMPAIGN)
    # `memory` in the campaign's override of assemble_coadd: the resolved value and every
    # value it overrides, with where each comes from.
    h = await client.text_document_hover_async(
        types.HoverParams(text_document=td(CAMPAIGN), position=pos_of(text, "memory   = 24GiB", delta=2))
    )
    v = h.contents.value
    assert "memory = 24GiB" in v and "assemble_coadd" in v, v
    assert "16GiB" in v and "pipeline.bps" in v, "the step's own value, overridden"
    assert "2GiB" in v and "defaults" in v and "built-in" in v, v
    chain = v[v.index("---") :]
    assert chain.index("24GiB") < chain.index("16GiB") < chain.index("built-in"), "highest precedence first"

    # A dimension: its values and their count.  `visit` gets its values from a relation's table.
    h = await client.text_document_hover_async(types.HoverParams(text_document=td(CAMPAIGN), position=pos_of(text, "visit != 30462")))
    visits = set()
    for table in ("exposures.csv", "overlaps.csv"):
        lines = (DRP / "data" / table).read_text().splitlines()
        col = lines[0].split(",").index("visit")
        visits |= {l.split(",")[col] for l in lines[1:] if l}
    assert "dimension" in h.contents.value and f"{len(visits)} values" in h.contents.value, h.contents.value
    assert "30400" in h.contents.value

    # A dataset: its scheme.
    ptext = PIPELINE.read_text()
    await open_and_wait(client, PIPELINE)
    h = await client.text_document_hover_async(types.HoverParams(text_document=td(PIPELINE), position=pos_of(ptext, "calexp, src]")))
    v = h.contents.value
    assert "dataset" in v and "calexp(visit, detector)" in v and "archive" in v and "calibrate" in v, v


async def test_definition_and_references_across_included_files(client: LanguageClient):
    text = CAMPAIGN.read_text()
    ptext = PIPELINE.read_text()
    stext = SITES.read_text()
    await open_and_wait(client, CAMPAIGN)
    # `use drp with rc2_w46`: the pipeline and the config are in pipeline.bps.
    locs = await client.text_document_definition_async(types.DefinitionParams(text_document=td(CAMPAIGN), position=pos_of(text, "rc2_w46", delta=2)))
    assert [(l.uri, l.range) for l in locs] == [(uri(PIPELINE), rng(ptext, "rc2_w46"))]
    locs = await client.text_document_definition_async(types.DefinitionParams(text_document=td(CAMPAIGN), position=pos_of(text, "s3df\n")))
    assert [(l.uri, l.range) for l in locs] == [(uri(SITES), rng(stext, "s3df"))]
    # A step named in a cluster: defined in pipeline.bps, referenced there by `after`.
    pos = pos_of(text, "characterize, calibrate]")
    locs = await client.text_document_definition_async(types.DefinitionParams(text_document=td(CAMPAIGN), position=pos))
    assert [(l.uri, l.range.start) for l in locs] == [(uri(PIPELINE), pos_of(ptext, "characterize over"))]
    refs = await client.text_document_references_async(
        types.ReferenceParams(text_document=td(CAMPAIGN), position=pos, context=types.ReferenceContext(include_declaration=True))
    )
    got = {(l.uri, l.range.start.line) for l in refs}
    assert (uri(CAMPAIGN), pos.line) in got
    assert (uri(PIPELINE), pos_of(ptext, "characterize over").line) in got, "the definition"
    assert (uri(PIPELINE), pos_of(ptext, "after characterize").line) in got, "calibrate's `after`"


async def test_completion_of_keys_enum_values_and_names(client: LanguageClient):
    text = CAMPAIGN.read_text()
    await open_and_wait(client, CAMPAIGN)

    async def complete(t: str, needle: str, delta: int):
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri(CAMPAIGN), version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=t)],
            )
        )
        r = await client.text_document_completion_async(
            types.CompletionParams(text_document=td(CAMPAIGN), position=pos_of(t, needle, delta=delta))
        )
        items = r.items if isinstance(r, types.CompletionList) else r
        return {i.label: i for i in items}

    # A key in `defaults`: execution settings, not step-only keys.
    t = text.replace("  cpus              = 1\n", "  cpus              = 1\n  wa\n", 1)
    items = await complete(t, "  wa\n", 4)
    assert "walltime" in items and "memory" in items and "env" in items
    assert "run" not in items and "backend" not in items
    assert items["walltime"].insert_text == "walltime = "
    # An enum value.
    t = text.replace("order    = breadth_first", "order    = ", 1)
    items = await complete(t, "order    = ", len("order    = "))
    assert set(items) == {"breadth_first", "depth_first"}
    # Names of defined things: sites, configs of the used pipeline.
    t = text.replace("site     = s3df", "site     = s", 1)
    items = await complete(t, "site     = s", len("site     = s"))
    assert "s3df" in items
    t = text.replace("use drp with rc2_w46", "use drp with ", 1)
    items = await complete(t, "use drp with ", len("use drp with "))
    assert {"rc2", "rc2_w46"} <= set(items)


async def test_formatting_and_symbols(client: LanguageClient):
    path = DRP / "scratch_fmt.bps"  # never written
    messy = "bps 1\n# a comment\ndefaults {memory=4GiB, walltime=1h   # long enough\n}\n"
    await open_and_wait(client, path, messy)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(text_document=td(path), options=types.FormattingOptions(tab_size=2, insert_spaces=True))
    )
    assert len(edits) == 1
    assert edits[0].new_text == "bps 1\n# a comment\ndefaults {\n  memory   = 4GiB\n  walltime = 1h  # long enough\n}\n"
    assert edits[0].range.start == types.Position(line=0, character=0)
    assert edits[0].range.end == types.Position(line=4, character=0)

    # A file with a syntax error is left alone.
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri(path), version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="bps 1\ndefaults { memory = = 4GiB }\n")],
        )
    )
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(text_document=td(path), options=types.FormattingOptions(tab_size=2, insert_spaces=True))
    )
    assert not edits

    await open_and_wait(client, PIPELINE)
    syms = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=td(PIPELINE)))
    drp = [s for s in syms if s.name == "drp"]
    assert drp and drp[0].kind == types.SymbolKind.Module
    kids = {c.name: c for c in drp[0].children}
    assert {"rc2", "rc2_w46", "isr", "calibrate", "make_summary"} <= set(kids)
    assert kids["isr"].kind == types.SymbolKind.Function


async def test_included_files_get_their_diagnostics(client: LanguageClient, tmp_path: pathlib.Path):
    # A copy of the example whose sites.bps (not opened) has a typo: opening the campaign
    # publishes the included file's diagnostics too.
    import shutil

    work = tmp_path / "drp"
    shutil.copytree(DRP, work)
    sites = work / "sites.bps"
    stext = sites.read_text().replace("backend        = slurm", "backend        = slurmm", 1)
    sites.write_text(stext)
    campaign = work / "drp.bps"
    await open_and_wait(client, campaign)
    diags = await wait_diagnostics(client, uri(sites))
    assert [d.code for d in diags] == ["E304"] and diags[0].range == rng(stext, "slurmm")

    # Once sites.bps is open it publishes its own diagnostics; a later check of the
    # campaign must not clear them.
    fixed_elsewhere = await open_and_wait(client, sites)
    assert [d.code for d in fixed_elsewhere] == ["E304"]
    ctext = campaign.read_text() + "\n"
    client.diagnostics.pop(uri(campaign), None)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri(campaign), version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=ctext)],
        )
    )
    await wait_diagnostics(client, uri(campaign))
    assert [d.code for d in client.diagnostics[uri(sites)]] == ["E304"]
