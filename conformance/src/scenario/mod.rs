//! Scenario files: `raw` (the YAML schema), `model` (validated), `load` (discovery, filters).

pub mod load;
pub mod model;
pub mod raw;
