//! Importers: route files written from another tool's description of an API: OpenAPI 3.0 and 3.1, WireMock stub
//! mappings and Mockoon environments.
//!
//! An importer turns the whole document into route-file text that passes `hotroute check`: whatever it cannot
//! convert becomes a [`Note`] (printed on stderr by the CLI) and a TOML comment where the route would have gone.

mod har;
mod mockoon;
mod openapi;
mod peer;
pub mod record;
mod schema;
mod wiremock;

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
    /// A WireMock or Mockoon source that is not what the importer reads: bad JSON (named `file:line:column`) or
    /// the wrong shape.
    #[error("{name}: {reason}")]
    Malformed {
        /// The file, with the line and column of a syntax error, or a JSON pointer into it.
        name: String,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// A WireMock or Mockoon file or folder that could not be read.
    #[error("cannot read `{file}`: {reason}\nhelp: {help}")]
    Unreadable {
        /// The file or folder.
        file: String,
        /// The OS error.
        reason: String,
        /// What to name instead.
        help: String,
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

pub use har::har_file;

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

/// Converts WireMock stub mappings into a route file: `path` is a `mappings/` folder (read recursively), a WireMock
/// root holding one, a file with a `mappings` list, or one mapping. `bodyFileName` is read from the `__files/`
/// folder beside `mappings/`. Mappings keep WireMock's order (by `priority`, then as read); what has no hotroute
/// equivalent becomes a [`Note`] and a comment above its route.
pub fn wiremock_path(path: &std::path::Path) -> Result<Imported, ImportError> {
    let source = wiremock::read(path)?;
    wiremock::convert_source(&source, &path.display().to_string())
}

/// Converts a Mockoon environment (its data file or export, JSON) read from `path` into a route file: a route per
/// response with its rules as `match` conditions, the default response last; `filePath` bodies are read relative
/// to the environment's folder.
pub fn mockoon_file(path: &std::path::Path) -> Result<Imported, ImportError> {
    let name = path.display().to_string();
    let mut budget = peer::MAX_TOTAL;
    let root = peer::read_json(path, "a Mockoon environment", &mut budget)?;
    let dir = path.parent().map(|p| if p.as_os_str().is_empty() { std::path::Path::new(".") } else { p });
    mockoon::convert(&root, &name, dir)
}

/// Like [`mockoon_file`], from the environment's JSON `text` named `name`; `filePath` bodies are not read.
pub fn mockoon(text: &str, name: &str) -> Result<Imported, ImportError> {
    let root = peer::parse_json(text, name, "a Mockoon environment")?;
    mockoon::convert(&root, name, None)
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
