//! One answer of a scripted route (its only one, a sequence item, or the not-found answer): fixed parts prepared at
//! load time, templated parts compiled at load time and rendered per request.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};

use crate::config::Fault;
use crate::config::{BodyConfig, HeaderTemplate};
use crate::route::respond::{self, Body, Prepared};
use crate::route::template::{Compiled, Needs, Templates, Vars, context};

/// What a template failed on at load time: where in the route file, and the message.
pub(crate) struct CompileError {
    pub span: Range<usize>,
    pub message: String,
}

#[derive(Debug)]
enum ReplyBody {
    Fixed(Bytes),
    Template(Compiled),
}

/// An answer ready to give.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Set when nothing is rendered: the answer is then the same bytes every time.
    prepared: Option<Prepared>,
    status: StatusCode,
    headers: HeaderMap,
    header_templates: Vec<(HeaderName, Compiled)>,
    /// `status` as a template, rendered per request to a final code from 200 to 599.
    status_template: Option<Compiled>,
    body: ReplyBody,
    needs: Needs,
    pub delay: Option<Duration>,
    pub fault: Option<Fault>,
}

/// The parts of an answer as checked from the route file.
pub(crate) struct ReplyParts<'a> {
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
    pub header_templates: &'a [HeaderTemplate],
    pub status_template: Option<&'a (String, Range<usize>)>,
    pub body: &'a BodyConfig,
    pub delay: Option<Duration>,
    pub fault: Option<Fault>,
}

impl Reply {
    /// Compiles the templated parts under names starting with `name` (e.g. `routes.toml:12`).
    pub fn build(
        parts: ReplyParts<'_>,
        templates: &mut Templates,
        name: &str,
        text: &str,
    ) -> Result<Reply, CompileError> {
        let mut needs = Needs::default();
        let mut header_templates = Vec::new();
        for t in parts.header_templates {
            let compiled = templates
                .compile(format!("{name} header {}", t.name), t.source.clone())
                .map_err(|e| compile_error(&e, t.span.clone(), text))?;
            needs = needs.union(compiled.needs);
            header_templates.push((t.name.clone(), compiled));
        }
        let status_template = match parts.status_template {
            None => None,
            Some((source, span)) => {
                let compiled = templates
                    .compile(format!("{name} status"), source.clone())
                    .map_err(|e| compile_error(&e, span.clone(), text))?;
                needs = needs.union(compiled.needs);
                Some(compiled)
            }
        };
        let body = match parts.body {
            BodyConfig::Fixed(bytes) => ReplyBody::Fixed(bytes.clone()),
            BodyConfig::Template { source, span } => {
                // Named by its key (`body`, `json` or `file`), so that an error names the place the user wrote.
                let key = key_of(text, span.start);
                let compiled = templates
                    .compile(format!("{name} {key}"), source.clone())
                    .map_err(|e| compile_error(&e, span.clone(), text))?;
                needs = needs.union(compiled.needs);
                ReplyBody::Template(compiled)
            }
        };
        let prepared = match (&body, header_templates.is_empty() && status_template.is_none()) {
            (ReplyBody::Fixed(bytes), true) => Some(Prepared::new(parts.status, parts.headers.clone(), bytes.clone())),
            _ => None,
        };
        Ok(Reply {
            prepared,
            status: parts.status,
            headers: parts.headers.clone(),
            header_templates,
            status_template,
            body,
            needs,
            delay: parts.delay,
            fault: parts.fault,
        })
    }

    /// The status and headers alone (for a `dir` route, whose body comes from the folder).
    pub fn head(&self) -> Response<Body> {
        let mut res = Response::new(Body::default());
        *res.status_mut() = self.status;
        *res.headers_mut() = self.headers.clone();
        res
    }

    /// The answer for one request. A render error, or a rendered header value that is not a valid header value,
    /// answers 500 with the reason and is logged; `location` names the route in both.
    pub fn render(
        &self,
        templates: &Templates,
        vars: &Vars<'_, '_>,
        rng_key: (u64, u64),
        method: &Method,
        location: &str,
    ) -> Response<Body> {
        if let Some(prepared) = &self.prepared {
            return prepared.to_response(method);
        }
        let ctx = context(vars, self.needs);
        // Every template of the answer in one trip to a render thread: headers in order, then the body.
        let mut jobs: Vec<Compiled> = self.status_template.iter().cloned().collect();
        jobs.extend(self.header_templates.iter().map(|(_, t)| t.clone()));
        if let ReplyBody::Template(t) = &self.body {
            jobs.push(t.clone());
        }
        let mut rendered = match templates.render_answer(rng_key, ctx, jobs) {
            Ok(rendered) => rendered.into_iter(),
            Err(refused) => {
                tracing::error!(route = %location, "template not rendered: {}", refused.0);
                let text = format!("503 template not rendered in route {location}: {}\n", refused.0);
                let mut res = respond::text(StatusCode::SERVICE_UNAVAILABLE, text, method);
                res.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                res.extensions_mut().insert(RenderFailed);
                return res;
            }
        };
        let status = match &self.status_template {
            None => self.status,
            Some(_) => match rendered.next() {
                Some(Ok(text)) => match text.trim().parse::<u16>().ok().filter(|c| (200..=599).contains(c)) {
                    Some(code) => StatusCode::from_u16(code).unwrap_or(self.status),
                    None => {
                        let why = format!("status rendered {text:?}, which is not a final status code from 200 to 599");
                        return render_error(location, &why, method);
                    }
                },
                Some(Err(e)) => return render_error(location, &format!("status: {e}"), method),
                None => return render_error(location, "status: not rendered", method),
            },
        };
        let mut headers = self.headers.clone();
        for (name, _) in &self.header_templates {
            let value = match rendered.next() {
                Some(Ok(v)) => v,
                Some(Err(e)) => return render_error(location, &format!("header `{name}`: {e}"), method),
                None => return render_error(location, &format!("header `{name}`: not rendered"), method),
            };
            match HeaderValue::from_str(&value) {
                Ok(v) => {
                    headers.insert(name.clone(), v);
                }
                Err(_) => {
                    let why = format!(
                        "header `{name}` rendered {value:?}, which is not a valid header value (it has a line break or another control character)"
                    );
                    return render_error(location, &why, method);
                }
            }
        }
        let body = match &self.body {
            ReplyBody::Fixed(bytes) => bytes.clone(),
            ReplyBody::Template(_) => match rendered.next() {
                Some(Ok(text)) => Bytes::from(text),
                Some(Err(e)) => return render_error(location, &e.to_string(), method),
                None => return render_error(location, "the body was not rendered", method),
            },
        };
        // A status template that rendered 204 or 304 sends no body (RFC 9110): with one, HTTP/1.1 clients were sent
        // its length and no bytes, and HTTP/2 clients had the stream reset. (A literal status with a body is a load
        // error.)
        let body = match status {
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED if self.status_template.is_some() => Bytes::new(),
            _ => body,
        };
        respond::with_body(status, headers, body, method)
    }
}

/// The key whose value starts at byte `at` of the route file (`json` for `json = { ... }`), or `body`.
fn key_of(text: &str, at: usize) -> &str {
    let at = at.min(text.len());
    let Some(before) = text.get(..at) else { return "body" };
    let line = &before[before.rfind(['\n', '{', ',']).map_or(0, |i| i + 1)..];
    match line.trim_end().strip_suffix('=').map(str::trim) {
        Some(key) if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => key,
        _ => "body",
    }
}

/// Marks a response that reports a failed render, so that a stream is not attached to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RenderFailed;

pub(crate) fn render_error(location: &str, why: &str, method: &Method) -> Response<Body> {
    tracing::error!(route = %location, "template error: {why}");
    let text = format!("500 template error in route {location}: {why}\n");
    let mut res = respond::text(StatusCode::INTERNAL_SERVER_ERROR, text, method);
    res.extensions_mut().insert(RenderFailed);
    res
}

/// Points a template syntax error at its line inside the route file: `span` is the template's value, `text` the
/// route file.
pub(crate) fn compile_error(e: &minijinja::Error, span: Range<usize>, text: &str) -> CompileError {
    let mut start = span.start.min(text.len());
    let value = text.get(start..span.end.min(text.len())).unwrap_or_default();
    // A multi-line string's first line break (right after `"""`) is not part of the template.
    let skip_first = value.starts_with("\"\"\"\n") || value.starts_with("'''\n");
    let line = e.line().unwrap_or(1) + usize::from(skip_first);
    if line > 1
        && let Some((offset, _)) = value.match_indices('\n').nth(line - 2)
    {
        start += offset + 1;
    }
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    let message = format!("template error: {}{detail}", e.kind());
    let end = text[start..].find('\n').map_or(text.len(), |n| start + n).min(span.end.max(start));
    CompileError { span: start..end.max(start), message }
}
