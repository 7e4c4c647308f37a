//! `throttle` and `cut_after` on a route: how its body is sent (a bandwidth limit, a download dropped after some
//! bytes). The data is checked here; `crate::route::shape` sends a body that way.

use toml::Spanned;

use super::limits::SizeSpec;
use super::{Checker, RouteSpec};

/// The smallest `throttle` accepted: slower would hold a connection for hours over a few kilobytes.
pub const MIN_THROTTLE: u64 = 16;

/// The checked `throttle` and `cut_after` of a route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ShapeConfig {
    /// Bytes per second the body is sent at, at most.
    pub throttle: Option<u64>,
    /// Bytes of the body sent before the connection is dropped (a body no longer than this is sent whole).
    pub cut_after: Option<u64>,
}

const THROTTLE_HELP: &str = "write a rate like \"64KiB/s\", \"1MB/s\" or \"500B/s\" (at least 16 bytes per second)";
const CUT_HELP: &str = "write a size like \"10KiB\" or a number of bytes: the body stops after that many";

impl Checker<'_> {
    /// `throttle` and `cut_after`, if either is set.
    pub(super) fn shape(&mut self, spec: &RouteSpec) -> Option<ShapeConfig> {
        let throttle = spec.throttle.as_ref().and_then(|t| self.throttle(t));
        let cut_after = spec.cut_after.as_ref().and_then(|c| {
            let parsed = match c.get_ref() {
                SizeSpec::Bytes(n) => Ok(*n),
                SizeSpec::Text(t) => t.trim().parse::<bytesize::ByteSize>().map(|b| b.as_u64()),
            };
            match parsed {
                Ok(n) => Some(n),
                Err(e) => {
                    let written = match c.get_ref() {
                        SizeSpec::Text(t) => t.clone(),
                        SizeSpec::Bytes(n) => n.to_string(),
                    };
                    self.error(c.span(), format!("`{written}` is not a size for `cut_after`: {e}"), CUT_HELP);
                    None
                }
            }
        });
        if let (Some(c), Some(_)) = (&spec.cut_after, &spec.fault) {
            self.error(
                c.span(),
                "a route with a `fault` sends no body, so `cut_after` would never cut",
                "keep one: `fault` breaks the connection at once, `cut_after` after some bytes of the body",
            );
        }
        (throttle.is_some() || cut_after.is_some()).then_some(ShapeConfig { throttle, cut_after })
    }

    fn throttle(&mut self, spec: &Spanned<String>) -> Option<u64> {
        let text = spec.get_ref().trim();
        let Some(size) = text.strip_suffix("/s").or_else(|| text.strip_suffix("ps")) else {
            self.error(spec.span(), format!("`{text}` is not a rate: it has no `/s`"), THROTTLE_HELP);
            return None;
        };
        match size.trim().parse::<bytesize::ByteSize>() {
            Ok(b) if b.as_u64() >= MIN_THROTTLE => Some(b.as_u64()),
            Ok(b) => {
                let message =
                    format!("`throttle = \"{text}\"` is {} bytes per second, below {MIN_THROTTLE}", b.as_u64());
                self.error(spec.span(), message, THROTTLE_HELP);
                None
            }
            Err(e) => {
                self.error(spec.span(), format!("`{text}` is not a rate: {e}"), THROTTLE_HELP);
                None
            }
        }
    }
}
