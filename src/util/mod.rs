//! Small helpers shared by every layer; they import nothing of hotroute's.

pub(crate) mod histogram;
pub(crate) mod process;
pub(crate) mod text;
pub(crate) mod time;
