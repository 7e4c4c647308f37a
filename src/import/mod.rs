//! Importers: route files written from another tool's description of an API. Today: OpenAPI 3.0 and 3.1.
//!
//! An importer turns the whole document into route-file text that passes `hotroute check`: whatever it cannot
//! convert becomes a [`Note`] (printed on stderr by the CLI) and a TOML comment where the route would have gone.

mod openapi;
mod schema;

pub(crate) use openapi::{Spec, SpecOp};

use std::fmt;

/// The route file an importer wrote, with what it could not convert.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Imported {
    /// The route-file text (TOML), ready to serve.
    pub routes: String,
    /// How many `[[route]]` tables the text holds.
    pub route_count: usize,
    /// Everything left out or approximated, each with its place in the source document.
    pub notes: Vec<Note>,
}

/// One thing an importer could not convert faithfully.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Note {
    /// Where in the source: the document's name and a JSON pointer, e.g. `spec.yaml#/paths/~1pets/get`.
    pub location: String,
    /// What was left out or changed, and why.
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Why a document could not be imported at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The text is neither JSON nor YAML.
    #[error("{name}: not JSON or YAML: {reason}\nhelp: an OpenAPI document is a JSON or YAML file; check its syntax")]
    Parse {
        /// The document's name.
        name: String,
        /// The parser's message (with its line and column).
        reason: String,
    },
    /// The document parsed but is not an OpenAPI 3 document.
    #[error("{name}: {reason}")]
    NotOpenApi {
        /// The document's name.
        name: String,
        /// What is missing or wrong, and what to do.
        reason: String,
    },
    /// The document is larger than an importer reads.
    #[error(
        "{name}: {size} bytes is more than the {limit} bytes an OpenAPI document may have\nhelp: split it into files joined by `$ref`"
    )]
    TooLarge {
        /// The document's name.
        name: String,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document itself could not be read.
    #[error("cannot read the OpenAPI document `{file}`: {reason}\nhelp: check the path (a file of JSON or YAML)")]
    Open {
        /// The file.
        file: String,
        /// The OS error.
        reason: String,
    },
    /// A file the document refers to could not be read.
    #[error(
        "{name}: cannot read `{file}` ({reason})\nhelp: a `$ref` to another file is relative to the document's folder"
    )]
    Read {
        /// The document that refers to it.
        name: String,
        /// The file.
        file: String,
        /// The OS error.
        reason: String,
    },
    /// The written route file failed its own check: a bug in the importer, reported rather than written.
    #[error("{name}: the imported routes do not load (please report this bug):\n{reason}")]
    Internal {
        /// The document's name.
        name: String,
        /// The load errors.
        reason: String,
    },
}

/// The largest OpenAPI document (or referenced file) an importer reads: a generous bound on memory and time.
pub const MAX_DOCUMENT: usize = 32 << 20;

/// Converts the OpenAPI 3.0 or 3.1 document `text` (JSON or YAML) named `name` into a route file: a route per
/// operation answering its first 2xx response's example (or one generated from its schema), and the other
/// documented responses and named examples selectable with `Prefer: code=404` or `Prefer: example=name`.
/// `$ref`s inside the document are resolved; a `$ref` to another file becomes a note (see [`openapi_file`]).
pub fn openapi(text: &str, name: &str) -> Result<Imported, ImportError> {
    openapi::convert(text, name, None)
}

/// Like [`openapi`], reading the document at `path` and the files its `$ref`s name (relative to its folder).
pub fn openapi_file(path: &std::path::Path) -> Result<Imported, ImportError> {
    let name = path.display().to_string();
    let text = openapi::read_bounded(path).map_err(|reason| ImportError::Open { file: name.clone(), reason })?;
    let dir = path.parent().map(|p| if p.as_os_str().is_empty() { std::path::Path::new(".") } else { p });
    openapi::convert(&text, &name, dir)
}

/// Reads the OpenAPI document at `path` to serve it: the route-file text [`openapi_file`] would write, and the
/// document with its operations (for request validation). Every file is read through `read`, which the caller uses
/// to record what the routes depend on.
pub(crate) fn openapi_spec(
    path: &std::path::Path,
    read: &mut dyn FnMut(&std::path::Path) -> Result<String, String>,
) -> Result<(Imported, Spec), ImportError> {
    let name = path.display().to_string();
    let text = read(path).map_err(|reason| ImportError::Open { file: name.clone(), reason })?;
    let dir = path.parent().map(|p| if p.as_os_str().is_empty() { std::path::Path::new(".") } else { p });
    openapi::convert_spec(&text, &name, dir, read)
}
