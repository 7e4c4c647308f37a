//! Errors a user can meet, each saying what is wrong, where, and what to do.
//!
//! Load errors point into the route file the way rustc points into source code: the file, line and column, the
//! offending line with a caret under the culprit, and a `help:` line. They are rendered once, when they are made,
//! so that the CLI, the log, the admin API and the Rust API all show the same text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// One problem found while loading a route file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadError {
    /// The file the problem is in (the route file or one it includes).
    pub file: PathBuf,
    /// 1-based line of the problem, when it has a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the problem, when it has a place in the file.
    pub column: Option<usize>,
    /// The short description, without the file excerpt.
    pub message: String,
    rendered: String,
}

impl LoadError {
    /// An error about a whole file (unreadable, missing), with a hint on what to do.
    pub fn file(file: &Path, message: impl Into<String>, help: &str) -> Self {
        let message = message.into();
        let rendered = format!("error: {message}\n  --> {}\n  = help: {help}", file.display());
        LoadError { file: file.to_path_buf(), line: None, column: None, message, rendered }
    }

    /// An error at `span` (byte offsets) of `source`, the text of `file`.
    pub fn at(file: &Path, source: &str, span: Range<usize>, message: impl Into<String>, help: Option<&str>) -> Self {
        Self::with_context(file, source, span, message, help, None)
    }

    /// Like [`LoadError::at`], with a second place in the same file (e.g. the earlier of two clashing routes).
    pub fn with_context(
        file: &Path,
        source: &str,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<&str>,
        context: Option<(Range<usize>, &str)>,
    ) -> Self {
        let message = message.into();
        let span = clamp(source, span);
        let (line, column) = line_col(source, span.start);
        let path = file.display().to_string();
        let mut snippet =
            Snippet::source(source).path(path.as_str()).annotation(AnnotationKind::Primary.span(span.clone()));
        if let Some((ctx, label)) = &context {
            snippet = snippet.annotation(AnnotationKind::Context.span(clamp(source, ctx.clone())).label(*label));
        }
        let mut report = vec![Level::ERROR.primary_title(message.as_str()).element(snippet)];
        if let Some(help) = help {
            report.push(Group::with_title(Level::HELP.secondary_title(help)));
        }
        let rendered = Renderer::plain().render(&report);
        LoadError { file: file.to_path_buf(), line: Some(line), column: Some(column), message, rendered }
    }

    /// The full, multi-line report (what `Display` prints).
    pub fn rendered(&self) -> &str {
        &self.rendered
    }

    /// `file:line:column`, or just the file when the error has no place.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file.display()),
            _ => self.file.display().to_string(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }
}

impl std::error::Error for LoadError {}

/// Every problem found in one load: a route file is checked as a whole, so a user fixes all of them in one go.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl LoadErrors {
    /// The first problem (there is always one).
    pub fn first(&self) -> &LoadError {
        &self.0[0]
    }
}

impl From<LoadError> for LoadErrors {
    fn from(e: LoadError) -> Self {
        LoadErrors(vec![e])
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            f.write_str(e.rendered())?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\n{} errors in the route file", self.0.len())?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
pub(crate) fn line_col(source: &str, at: usize) -> (usize, usize) {
    let at = floor_char_boundary(source, at.min(source.len()));
    let before = &source[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, source[line_start..at].chars().count() + 1)
}

/// Byte offsets of line starts, so that the line of each of 10,000 routes is a binary search, not a scan.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex(Vec<usize>);

impl LineIndex {
    pub(crate) fn new(source: &str) -> Self {
        LineIndex(std::iter::once(0).chain(source.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }

    /// 1-based line of byte offset `at`.
    pub(crate) fn line(&self, at: usize) -> usize {
        self.0.partition_point(|&start| start <= at)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Keeps a span inside the text and on character boundaries, so that rendering never panics on odd input.
fn clamp(source: &str, span: Range<usize>) -> Range<usize> {
    let start = floor_char_boundary(source, span.start.min(source.len()));
    let end = floor_char_boundary(source, span.end.min(source.len())).max(start);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 9), (2, 3));
    }

    #[test]
    fn rendering_shows_the_line_and_a_help() {
        let src = "[[route]]\nstauts = 200\n";
        let e = LoadError::at(
            Path::new("routes.toml"),
            src,
            10..16,
            "unknown key `stauts`",
            Some("did you mean `status`?"),
        );
        assert_eq!((e.line, e.column), (Some(2), Some(1)));
        let text = e.to_string();
        assert!(text.contains("routes.toml:2:1"), "{text}");
        assert!(text.contains("stauts = 200"), "{text}");
        assert!(text.contains("did you mean `status`?"), "{text}");
    }

    #[test]
    fn line_index_agrees_with_line_col() {
        let src = "a\n\nbc\nd";
        let index = LineIndex::new(src);
        for at in 0..=src.len() {
            assert_eq!(index.line(at), line_col(src, at).0, "at {at}");
        }
    }

    #[test]
    fn odd_spans_do_not_panic() {
        let e = LoadError::at(Path::new("r.toml"), "é", 1..99, "x", None);
        assert_eq!(e.line, Some(1));
    }
}
