//! An example made from a JSON Schema (OpenAPI 3.0's dialect and 3.1's): the same document always gives the same
//! example, so that an imported route file is repeatable and diffs cleanly when the spec changes.

use serde_json::{Map, Number, Value};

use super::openapi::Docs;

/// How deep a generated example nests: deeper schemas (usually recursive ones) stop there.
const MAX_DEPTH: usize = 12;
/// How many values one generated example may hold, so that a schema whose objects fan out through `$ref`s cannot
/// make an answer of millions of nodes.
const MAX_NODES: usize = 20_000;
/// The most items a generated array holds, whatever its `minItems`.
const MAX_ITEMS: u64 = 20;
/// The longest generated string, whatever its `minLength`.
const MAX_STRING: u64 = 1024;

/// Makes examples from schemas, counting its work.
pub(super) struct Generator<'d> {
    docs: &'d Docs,
    nodes: usize,
    /// Whether the budget ran out (the example is then partial, and the caller notes it).
    pub truncated: bool,
    /// `$ref`s that could not be followed, each with the reason.
    pub problems: Vec<String>,
}

impl<'d> Generator<'d> {
    pub(super) fn new(docs: &'d Docs) -> Self {
        Generator { docs, nodes: 0, truncated: false, problems: Vec::new() }
    }

    /// An example of `schema` (found in file `file`), or `None` when the schema gives nothing to build one from.
    pub(super) fn example(&mut self, file: &'d str, schema: &'d Value) -> Option<Value> {
        self.nodes = 0;
        let mut stack = Vec::new();
        self.value(file, schema, 0, &mut stack)
    }

    fn value(
        &mut self,
        file: &'d str,
        schema: &'d Value,
        depth: usize,
        stack: &mut Vec<*const Value>,
    ) -> Option<Value> {
        let (file, schema) = match self.docs.resolve(file, schema) {
            Ok(found) => found,
            Err(e) => {
                self.problems.push(e);
                return None;
            }
        };
        // A recursive schema (a tree node holding its children) stops at the first repetition.
        if depth > MAX_DEPTH || stack.contains(&(schema as *const Value)) {
            return None;
        }
        if self.nodes >= MAX_NODES {
            self.truncated = true;
            return None;
        }
        self.nodes += 1;
        let Value::Object(s) = schema else {
            // `true` (anything) or `false` (nothing) in 3.1.
            return schema.as_bool().filter(|b| *b).map(|_| Value::Object(Map::new()));
        };
        for key in ["const", "example", "default"] {
            if let Some(v) = s.get(key) {
                return Some(v.clone());
            }
        }
        if let Some(v) = s.get("examples").and_then(Value::as_array).and_then(|a| a.first()) {
            return Some(v.clone());
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array)
            && let Some(v) = values.iter().find(|v| !v.is_null()).or(values.first())
        {
            return Some(v.clone());
        }
        stack.push(schema as *const Value);
        let out = self.shaped(file, s, depth, stack);
        stack.pop();
        out
    }

    fn shaped(
        &mut self,
        file: &'d str,
        s: &'d Map<String, Value>,
        depth: usize,
        stack: &mut Vec<*const Value>,
    ) -> Option<Value> {
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            // Every part holds: merge the objects they make (a `Pet` that is a `NewPet` plus an `id`).
            let mut merged = Map::new();
            let mut other = None;
            for part in all {
                match self.value(file, part, depth + 1, stack) {
                    Some(Value::Object(m)) => merged.extend(m),
                    Some(v) => other = other.or(Some(v)),
                    None => {}
                }
            }
            if let Some(Value::Object(m)) = self.object(file, s, depth, stack) {
                merged.extend(m);
            }
            return match other {
                Some(v) if merged.is_empty() => Some(v),
                _ => Some(Value::Object(merged)),
            };
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(choices) = s.get(key).and_then(Value::as_array) {
                // The first choice that makes anything: the answer then fits exactly that choice.
                let chosen = choices.iter().find_map(|c| self.value(file, c, depth + 1, stack));
                return match (chosen, self.object(file, s, depth, stack)) {
                    (Some(Value::Object(mut a)), Some(Value::Object(b))) => {
                        a.extend(b);
                        Some(Value::Object(a))
                    }
                    (Some(v), _) => Some(v),
                    (None, rest) => rest,
                };
            }
        }
        let ty = match s.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            // 3.1 writes a nullable type as a list: `[string, "null"]`.
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").or(Some("null")),
            _ => None,
        };
        let ty = ty.unwrap_or(if s.contains_key("properties") || s.contains_key("additionalProperties") {
            "object"
        } else if s.contains_key("items") {
            "array"
        } else {
            "object"
        });
        match ty {
            "string" => Some(Value::String(string(s))),
            "integer" => Some(Value::Number(integer(s).into())),
            "number" => Some(number(s)),
            "boolean" => Some(Value::Bool(true)),
            "null" => Some(Value::Null),
            "array" => {
                let min = s.get("minItems").and_then(Value::as_u64).unwrap_or(1).max(1);
                let max = s.get("maxItems").and_then(Value::as_u64).unwrap_or(u64::MAX);
                let n = min.min(max).min(MAX_ITEMS);
                let item = match s.get("items") {
                    Some(items) => self.value(file, items, depth + 1, stack),
                    None => Some(Value::String("string".into())),
                };
                Some(Value::Array(match item {
                    Some(item) => {
                        // The copies count against the budget too: arrays of arrays would multiply otherwise.
                        let size = nodes(&item);
                        let room = MAX_NODES.saturating_sub(self.nodes) / size;
                        let n = (n as usize).min(room.max(1));
                        self.nodes += size * (n - 1);
                        (0..n).map(|_| item.clone()).collect()
                    }
                    None => Vec::new(),
                }))
            }
            _ => self.object(file, s, depth, stack),
        }
    }

    fn object(
        &mut self,
        file: &'d str,
        s: &'d Map<String, Value>,
        depth: usize,
        stack: &mut Vec<*const Value>,
    ) -> Option<Value> {
        let mut out = Map::new();
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                // An answer never carries a write-only property (a password sent on create).
                let write_only = self
                    .docs
                    .resolve(file, prop)
                    .ok()
                    .is_some_and(|(_, p)| p.get("writeOnly").and_then(Value::as_bool) == Some(true));
                if write_only {
                    continue;
                }
                if let Some(v) = self.value(file, prop, depth + 1, stack) {
                    out.insert(name.clone(), v);
                }
            }
        } else if let Some(extra @ Value::Object(_)) = s.get("additionalProperties")
            && let Some(v) = self.value(file, extra, depth + 1, stack)
        {
            out.insert("additionalProp1".into(), v);
        }
        Some(Value::Object(out))
    }
}

fn string(s: &Map<String, Value>) -> String {
    let base = match s.get("format").and_then(Value::as_str).unwrap_or("") {
        "date-time" => "2024-01-01T00:00:00Z",
        "date" => "2024-01-01",
        "time" => "12:00:00",
        "uuid" => "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "email" | "idn-email" => "user@example.com",
        "uri" | "url" | "iri" | "uri-reference" => "https://example.com/",
        "hostname" | "idn-hostname" => "example.com",
        "ipv4" => "192.0.2.1",
        "ipv6" => "2001:db8::1",
        "byte" => "aGVsbG8=",
        "password" => "********",
        "duration" => "P1D",
        _ => "string",
    };
    let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0).min(MAX_STRING) as usize;
    let max = s.get("maxLength").and_then(Value::as_u64).unwrap_or(u64::MAX).min(MAX_STRING) as usize;
    let mut text: String = base.chars().take(max).collect();
    while text.chars().count() < min {
        text.push('x');
    }
    text
}

/// A bound: `minimum` with 3.0's boolean `exclusiveMinimum`, or 3.1's numeric `exclusiveMinimum`.
fn bound(s: &Map<String, Value>, key: &str, exclusive: &str) -> Option<(f64, bool)> {
    match s.get(exclusive) {
        Some(Value::Number(n)) => n.as_f64().map(|v| (v, true)),
        Some(Value::Bool(true)) => s.get(key).and_then(Value::as_f64).map(|v| (v, true)),
        _ => s.get(key).and_then(Value::as_f64).map(|v| (v, false)),
    }
}

fn integer(s: &Map<String, Value>) -> i64 {
    let min = bound(s, "minimum", "exclusiveMinimum");
    let max = bound(s, "maximum", "exclusiveMaximum");
    let clamp = |v: f64| v.clamp(i64::MIN as f64, i64::MAX as f64) as i64;
    match (min, max) {
        (Some((lo, ex)), _) => clamp(if ex { lo.floor() + 1.0 } else { lo.ceil() }),
        (None, Some((hi, ex))) => clamp(if ex { (hi.ceil() - 1.0).min(0.0) } else { hi.floor().min(0.0) }),
        (None, None) => 0,
    }
}

fn number(s: &Map<String, Value>) -> Value {
    let min = bound(s, "minimum", "exclusiveMinimum");
    let max = bound(s, "maximum", "exclusiveMaximum");
    let v = match (min, max) {
        (Some((lo, false)), _) => lo,
        (Some((lo, true)), Some((hi, _))) => (lo + hi) / 2.0,
        (Some((lo, true)), None) => lo + 1.0,
        (None, Some((hi, false))) => hi.min(0.0),
        (None, Some((hi, true))) => (hi - 1.0).min(0.0),
        (None, None) => 0.0,
    };
    Number::from_f64(v).map_or(Value::from(0), Value::Number)
}

/// How many values `v` holds, itself included.
fn nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(nodes).sum(),
        Value::Object(m) => m.values().map(nodes).sum(),
        _ => 0,
    }
}
