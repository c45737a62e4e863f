//! JSON lines: one object per frame (the schema is in the README).

use std::io::{self, Write};

use crate::model::FrameRecord;

/// Writes `frame` as one line of JSON.
pub fn write_frame(out: &mut dyn Write, frame: &FrameRecord) -> io::Result<()> {
    serde_json::to_writer(&mut *out, frame)?;
    out.write_all(b"\n")
}
