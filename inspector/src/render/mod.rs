//! The views of decoded frames. Each printer writes one frame at a time, so memory stays
//! flat however long the capture.

pub mod fast;
pub mod fields;
pub mod ipc_fields;
pub mod json;
pub mod summary;
pub mod verbose;
