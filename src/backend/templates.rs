//! The one template setup every engine renders its fixed files through (`templates/ENGINE/`).
//!
//! Templates are compiled into the binary.  All engines share these settings: no
//! auto-escaping (every value is quoted by Rust code for its context before it reaches a
//! template), `trim_blocks` and `lstrip_blocks` (a block tag on its own line leaves no
//! line), and the trailing newline kept.  An engine may add filters of its own.

use minijinja::{AutoEscape, Environment, Value};

use crate::diag::Diagnostic;

/// A template filter: text in, text out.
pub type Filter = fn(&str) -> String;

/// An engine's templates (name, source) and filters (name, function).
pub struct TemplateSet {
    pub templates: &'static [(&'static str, &'static str)],
    pub filters: &'static [(&'static str, Filter)],
}

/// Compiled templates of one engine.
pub struct Templates {
    env: Environment<'static>,
}

fn bug(what: &str, e: minijinja::Error) -> Diagnostic {
    Diagnostic::new("E899", format!("internal error in template {what}: {e}"))
        .help("this is a bpsc bug; please report it with the campaign file that triggers it")
}

impl Templates {
    pub fn new(set: &TemplateSet) -> Result<Templates, Diagnostic> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        for &(name, f) in set.filters {
            env.add_filter(name, move |s: String| f(&s));
        }
        for &(name, src) in set.templates {
            env.add_template(name, src).map_err(|e| bug(name, e))?;
        }
        Ok(Templates { env })
    }

    /// Render template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, Diagnostic> {
        self.env.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| bug(name, e))
    }
}
