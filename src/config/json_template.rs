//! The template source of a `json = ...` value with `template = true`: written when the route file loads, compiled
//! by the route layer's templates.

use std::fmt::Write as _;

/// The name of the filter that writes a value as JSON text inside a `json` template; the route layer's templates
/// register it under this name.
pub(crate) const JSON_FILTER: &str = "hotroute_json";

/// Whether `s` holds template syntax at all.
pub fn has_template_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The template that renders a `json = ...` value: every string in it is a template whose output is a JSON string,
/// and a string that is one `{{ expression }}` and nothing else gives the expression's JSON value (so
/// `"{{ count }}"` is a number and `"{{ json.items }}"` an array). Object keys are not templates. The structure is
/// written as JSON text, so the output is valid JSON whatever the strings render to.
pub fn json_template_source(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_json_template(value, &mut out);
    out
}

fn write_json_template(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match value {
        J::String(s) if !has_template_syntax(s) => out.push_str(&J::String(s.clone()).to_string()),
        J::String(s) => match single_expression(s) {
            Some(expr) => {
                let _ = write!(out, "{{{{ ({expr}) | {JSON_FILTER} }}}}");
            }
            None => {
                let _ = write!(out, "{{% filter {JSON_FILTER} %}}");
                out.push_str(s);
                out.push_str("{% endfilter %}");
            }
        },
        J::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_template(item, out);
            }
            out.push(']');
        }
        J::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let key = J::String(key.clone()).to_string();
                if has_template_syntax(&key) || key.contains("}}") || key.contains("%}") {
                    // A space keeps the object's `{` from touching `{% raw %}`, which would read as `{{`.
                    if out.ends_with('{') {
                        out.push(' ');
                    }
                    out.push_str("{% raw %}");
                    out.push_str(&key);
                    out.push_str("{% endraw %}");
                } else {
                    out.push_str(&key);
                }
                out.push(':');
                write_json_template(item, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The expression of a string that is exactly `{{ expression }}`.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    let nested = ["{{", "}}", "{%", "%}", "{#", "#}"].iter().any(|t| inner.contains(t));
    (!nested && !inner.trim().is_empty()).then(|| inner.trim())
}
