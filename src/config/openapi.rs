//! `[server] openapi` and `openapi_validate`: the data only. Reading the document is `crate::import`'s, serving and
//! checking requests against it `crate::route::openapi`'s.

use schemars::JsonSchema;
use serde::Deserialize;

/// What `[server] openapi_validate` does with a request that does not fit its OpenAPI operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValidateMode {
    /// Requests are not checked (the default).
    #[default]
    Off,
    /// Violations are logged and journaled; the request is answered as if they were not there.
    Warn,
    /// A violating request is answered `422` (`400` for a body that is not JSON) with every problem.
    Enforce,
}
