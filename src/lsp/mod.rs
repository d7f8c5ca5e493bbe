//! `bpsc lsp`: the language server, over standard input and output.
//!
//! A synchronous loop on the `lsp-server` crate (the model of Gleam, Nickel and KCL): one
//! thread reads messages, handles each in turn, and between messages checks the documents
//! whose debounce delay has run out.
//!
//! * Open documents are held in memory and override the disk ([`OverlayFs`]): checking a
//!   campaign reads its included files from their unsaved buffers when they are open.
//! * Every open document is checked as a root of its own with the same [`check`] as `bpsc
//!   check`, [`DEBOUNCE`] after the last change.  Its diagnostics are published for it, and
//!   for the files it includes that are not open themselves.
//! * Hover, definition, references, code actions and symbols first bring the document's
//!   analysis up to date (so positions always match the text); completion reads the
//!   current text and the last analysis's names, so it never waits for a check.
//! * Positions are converted in one place, [`conv`].

pub mod conv;
mod features;
pub mod index;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::*;

use crate::check::{check, Checked, Options};
use crate::fs::{OverlayFs, RealFs};
use crate::source::{FileId, SourceFile};
use index::Index;

/// Quiet time after the last change before a document is checked again.
pub const DEBOUNCE: Duration = Duration::from_millis(30);

/// Run the server on standard input and output until the client says `exit`.
pub fn run_stdio() -> Result<(), String> {
    let (conn, io) = Connection::stdio();
    serve(&conn)?;
    drop(conn);
    io.join().map_err(|e| e.to_string())
}

pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::INCREMENTAL),
            ..Default::default()
        })),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["=".into(), " ".into(), "(".into(), "[".into(), ",".into(), ".".into()]),
            ..Default::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Initialise on `conn` and serve until shutdown.
pub fn serve(conn: &Connection) -> Result<(), String> {
    let caps = serde_json::json!({
        "capabilities": capabilities(),
        "serverInfo": {"name": "bpsc", "version": env!("CARGO_PKG_VERSION")},
    });
    let (id, _params) = conn.initialize_start().map_err(|e| e.to_string())?;
    conn.initialize_finish(id, caps).map_err(|e| e.to_string())?;
    let mut s = Server { docs: BTreeMap::new() };
    s.main_loop(conn)
}

/// The checked state of one open document, as a root.
pub struct Analysis {
    pub checked: Checked,
    pub index: Index,
    pub root: FileId,
}

impl Analysis {
    pub fn file(&self) -> &SourceFile {
        self.checked.program.map.get(self.root)
    }
    pub fn module(&self) -> Option<&crate::syntax::ast::Module> {
        self.checked.program.module(self.root)
    }
}

pub struct Doc {
    pub uri: Uri,
    pub path: PathBuf,
    pub text: Arc<str>,
    /// Line index of `text`, for position conversion.
    pub lines: SourceFile,
    /// When the document is due to be checked (`None`: its analysis is up to date).
    pub due: Option<Instant>,
    pub analysis: Option<Analysis>,
    /// URIs of other (unopened) files this document's check published diagnostics for.
    pub published: BTreeSet<String>,
}

pub struct Server {
    pub docs: BTreeMap<PathBuf, Doc>,
}

fn line_index(path: &std::path::Path, text: &Arc<str>) -> SourceFile {
    SourceFile::new(FileId(0), path.to_path_buf(), String::new(), text.clone())
}

impl Server {
    fn main_loop(&mut self, conn: &Connection) -> Result<(), String> {
        loop {
            let due = self.docs.values().filter_map(|d| d.due).min();
            let msg = match due {
                Some(t) => match conn.receiver.recv_timeout(t.saturating_duration_since(Instant::now())) {
                    Ok(m) => Some(m),
                    Err(e) if e.is_timeout() => None,
                    Err(_) => return Ok(()),
                },
                None => match conn.receiver.recv() {
                    Ok(m) => Some(m),
                    Err(_) => return Ok(()),
                },
            };
            match msg {
                None => self.check_due(conn),
                Some(Message::Request(req)) => {
                    if conn.handle_shutdown(&req).map_err(|e| e.to_string())? {
                        return Ok(());
                    }
                    let resp = self.request(conn, req);
                    send(conn, resp.into());
                }
                Some(Message::Notification(n)) => {
                    if n.method == "exit" {
                        return Ok(());
                    }
                    self.notification(conn, n);
                }
                Some(Message::Response(_)) => {}
            }
        }
    }

    fn check_due(&mut self, conn: &Connection) {
        let now = Instant::now();
        let due: Vec<PathBuf> = self.docs.iter().filter(|(_, d)| d.due.is_some_and(|t| t <= now)).map(|(p, _)| p.clone()).collect();
        for p in due {
            self.analyze(conn, &p);
        }
    }

    /// Check one document now and publish its diagnostics.
    fn analyze(&mut self, conn: &Connection, path: &PathBuf) {
        let mut fs = OverlayFs::new(&RealFs);
        for (p, d) in &self.docs {
            fs.set(p, d.text.clone());
        }
        let checked = check(&fs, path, &Options::default());
        let index = Index::build(&checked.program.modules);
        let root = checked.program.root;
        let open: BTreeSet<PathBuf> = self.docs.keys().cloned().collect();
        let Some(doc) = self.docs.get_mut(path) else { return };
        let a = Analysis { checked, index, root };
        let (publish, published) = features::publish(&a, &doc.uri, path, &open);
        for old in doc.published.difference(&published) {
            // A file opened since publishes its own diagnostics: leave them alone.
            if let Ok(uri) = old.parse::<Uri>().map_err(|_| ()).and_then(|u| {
                if conv::path_of(&u).is_some_and(|p| open.contains(&p)) {
                    Err(())
                } else {
                    Ok(u)
                }
            }) {
                notify::<notification::PublishDiagnostics>(conn, PublishDiagnosticsParams { uri, diagnostics: Vec::new(), version: None });
            }
        }
        for p in publish {
            notify::<notification::PublishDiagnostics>(conn, p);
        }
        doc.published = published;
        doc.analysis = Some(a);
        doc.due = None;
    }

    /// The document at `uri`, with its analysis brought up to date.
    fn fresh(&mut self, conn: &Connection, uri: &Uri) -> Option<&Doc> {
        let path = conv::path_of(uri)?;
        let d = self.docs.get(&path)?;
        if d.due.is_some() || d.analysis.is_none() {
            self.analyze(conn, &path);
        }
        self.docs.get(&path)
    }

    fn notification(&mut self, conn: &Connection, n: Notification) {
        match n.method.as_str() {
            notification::DidOpenTextDocument::METHOD => {
                let Ok(p) = serde_json::from_value::<DidOpenTextDocumentParams>(n.params) else { return };
                let Some(path) = conv::path_of(&p.text_document.uri) else { return };
                let text: Arc<str> = Arc::from(p.text_document.text.as_str());
                let lines = line_index(&path, &text);
                self.docs.insert(
                    path.clone(),
                    Doc { uri: p.text_document.uri, path, text, lines, due: None, analysis: None, published: BTreeSet::new() },
                );
                // Checked at once (no typing to wait for); the others may include it.
                let now = Instant::now();
                for d in self.docs.values_mut() {
                    d.due = Some(d.due.map_or(now, |t| t.min(now)));
                }
            }
            notification::DidChangeTextDocument::METHOD => {
                let Ok(p) = serde_json::from_value::<DidChangeTextDocumentParams>(n.params) else { return };
                let Some(path) = conv::path_of(&p.text_document.uri) else { return };
                let Some(doc) = self.docs.get_mut(&path) else { return };
                for ch in p.content_changes {
                    let text = match ch.range {
                        None => ch.text,
                        Some(r) => {
                            let lo = conv::offset(&doc.lines, r.start) as usize;
                            let hi = (conv::offset(&doc.lines, r.end) as usize).max(lo);
                            let mut t = String::with_capacity(doc.text.len() + ch.text.len());
                            t.push_str(&doc.text[..lo]);
                            t.push_str(&ch.text);
                            t.push_str(&doc.text[hi..]);
                            t
                        }
                    };
                    doc.text = Arc::from(text);
                    doc.lines = line_index(&path, &doc.text);
                }
                let at = Instant::now() + DEBOUNCE;
                for d in self.docs.values_mut() {
                    d.due = Some(at);
                }
            }
            notification::DidCloseTextDocument::METHOD => {
                let Ok(p) = serde_json::from_value::<DidCloseTextDocumentParams>(n.params) else { return };
                let Some(path) = conv::path_of(&p.text_document.uri) else { return };
                if let Some(d) = self.docs.remove(&path) {
                    // The closed file's diagnostics go; the others re-check against the disk.
                    let uris = std::iter::once(d.uri).chain(d.published.iter().filter_map(|u| u.parse().ok()));
                    for uri in uris {
                        notify::<notification::PublishDiagnostics>(
                            conn,
                            PublishDiagnosticsParams { uri, diagnostics: Vec::new(), version: None },
                        );
                    }
                }
                let now = Instant::now();
                for d in self.docs.values_mut() {
                    d.due = Some(now);
                }
            }
            _ => {}
        }
    }

    fn request(&mut self, conn: &Connection, req: Request) -> Response {
        let id = req.id.clone();
        let r = self.dispatch(conn, req);
        match r {
            Ok(v) => Response::new_ok(id, v),
            Err((code, msg)) => Response::new_err(id, code as i32, msg),
        }
    }

    fn dispatch(&mut self, conn: &Connection, req: Request) -> Result<serde_json::Value, (ErrorCode, String)> {
        fn params<P: serde::de::DeserializeOwned>(req: Request) -> Result<P, (ErrorCode, String)> {
            serde_json::from_value(req.params).map_err(|e| (ErrorCode::InvalidParams, e.to_string()))
        }
        fn json<T: serde::Serialize>(v: T) -> Result<serde_json::Value, (ErrorCode, String)> {
            serde_json::to_value(v).map_err(|e| (ErrorCode::InternalError, e.to_string()))
        }
        match req.method.as_str() {
            request::HoverRequest::METHOD => {
                let p: HoverParams = params(req)?;
                let pos = p.text_document_position_params;
                let Some(doc) = self.fresh(conn, &pos.text_document.uri) else { return json(None::<Hover>) };
                json(features::hover(doc, pos.position))
            }
            request::GotoDefinition::METHOD => {
                let p: GotoDefinitionParams = params(req)?;
                let pos = p.text_document_position_params;
                let open = self.open_uris();
                let Some(doc) = self.fresh(conn, &pos.text_document.uri) else { return json(None::<GotoDefinitionResponse>) };
                let locs = features::definition(doc, pos.position, &open);
                json(if locs.is_empty() { None } else { Some(GotoDefinitionResponse::Array(locs)) })
            }
            request::References::METHOD => {
                let p: ReferenceParams = params(req)?;
                let pos = p.text_document_position;
                let paths: Vec<PathBuf> = self.docs.keys().cloned().collect();
                for path in &paths {
                    if self.docs.get(path).is_some_and(|d| d.due.is_some() || d.analysis.is_none()) {
                        self.analyze(conn, path);
                    }
                }
                let open = self.open_uris();
                let Some(path) = conv::path_of(&pos.text_document.uri) else { return json(None::<Vec<Location>>) };
                let Some(doc) = self.docs.get(&path) else { return json(None::<Vec<Location>>) };
                let others: Vec<&Doc> = self.docs.values().collect();
                json(features::references(doc, pos.position, p.context.include_declaration, &others, &open))
            }
            request::Completion::METHOD => {
                let p: CompletionParams = params(req)?;
                let pos = p.text_document_position;
                let Some(path) = conv::path_of(&pos.text_document.uri) else { return json(None::<CompletionResponse>) };
                let Some(doc) = self.docs.get(&path) else { return json(None::<CompletionResponse>) };
                if doc.analysis.is_none() {
                    self.analyze(conn, &path);
                }
                let Some(doc) = self.docs.get(&path) else { return json(None::<CompletionResponse>) };
                json(Some(CompletionResponse::Array(features::completion(doc, pos.position))))
            }
            request::DocumentSymbolRequest::METHOD => {
                let p: DocumentSymbolParams = params(req)?;
                let Some(doc) = self.fresh(conn, &p.text_document.uri) else { return json(None::<DocumentSymbolResponse>) };
                json(Some(DocumentSymbolResponse::Nested(features::symbols(doc))))
            }
            request::Formatting::METHOD => {
                let p: DocumentFormattingParams = params(req)?;
                let Some(path) = conv::path_of(&p.text_document.uri) else { return json(None::<Vec<TextEdit>>) };
                let Some(doc) = self.docs.get(&path) else { return json(None::<Vec<TextEdit>>) };
                json(features::format(doc))
            }
            request::CodeActionRequest::METHOD => {
                let p: CodeActionParams = params(req)?;
                let Some(doc) = self.fresh(conn, &p.text_document.uri) else { return json(None::<CodeActionResponse>) };
                json(Some(features::code_actions(doc, p.range)))
            }
            m => Err((ErrorCode::MethodNotFound, format!("bpsc lsp does not handle {m}"))),
        }
    }

    fn open_uris(&self) -> BTreeMap<PathBuf, Uri> {
        self.docs.iter().map(|(p, d)| (p.clone(), d.uri.clone())).collect()
    }
}

fn send(conn: &Connection, m: Message) {
    let _ = conn.sender.send(m);
}

fn notify<N: lsp_types::notification::Notification>(conn: &Connection, params: N::Params) {
    send(conn, Message::Notification(Notification::new(N::METHOD.to_string(), params)));
}
