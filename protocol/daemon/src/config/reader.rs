//! The reader every section's code shares: diagnostics with file, line and key path, and
//! corosync's value checks (`coroparse.c`'s `safe_atoq`, yes/no choices, logconfig's on/off).
//! A leaf module: the section readers use it, it uses none of them.

use super::{ConfigError, Diagnostic};
use crate::conf_parse::{Item, Section};

pub(super) type Result<T> = std::result::Result<T, ConfigError>;

pub(super) struct Reader<'a> {
    file: &'a str,
    /// What was accepted with a warning, in reading order.
    pub(super) warnings: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(file: &'a str) -> Reader<'a> {
        Reader {
            file,
            warnings: Vec::new(),
        }
    }

    pub(super) fn diag(&self, path: &str, line: u32, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.to_owned(),
            line,
            key: path.to_owned(),
            message: message.into(),
        }
    }

    pub(super) fn warn(&mut self, path: &str, line: u32, message: impl Into<String>) {
        let d = self.diag(path, line, message);
        self.warnings.push(d);
    }

    pub(super) fn error(&self, path: &str, line: u32, message: impl Into<String>) -> ConfigError {
        ConfigError::Key(self.diag(path, line, message))
    }

    pub(super) fn unknown_key(&mut self, section: &str, item: &Item) {
        let path = join(section, &item.key);
        self.warn(&path, item.line, "unknown key, ignored");
    }

    pub(super) fn unknown_section(&mut self, parent: &str, s: &Section) {
        let path = join(parent, &s.name);
        self.warn(&path, s.line, "unknown section, ignored");
    }

    pub(super) fn ignored(&mut self, section: &str, item: &Item, why: &str) {
        let path = join(section, &item.key);
        self.warn(&path, item.line, format!("ignored: {why}"));
    }

    /// `safe_atoq` into `[0, max]`, with coroparse's message.
    pub(super) fn uint(&self, section: &str, item: &Item, max: u64) -> Result<u64> {
        let path = join(section, &item.key);
        match item.value.parse::<i64>() {
            Ok(v) if v >= 0 && v as u64 <= max => Ok(v as u64),
            _ => Err(self.error(
                &path,
                item.line,
                format!(
                    "Value of key \"{path}\" is expected to be integer in range (0..{max}), but \"{}\" was given",
                    item.value
                ),
            )),
        }
    }

    pub(super) fn u32(&self, section: &str, item: &Item) -> Result<u32> {
        self.uint(section, item, u64::from(u32::MAX))
            .map(|v| v as u32)
    }

    /// `yes`/`no`, else one of corosync's message when it refuses other values.
    pub(super) fn choice<'v>(
        &self,
        section: &str,
        item: &'v Item,
        allowed: &[&str],
        message: &str,
    ) -> Result<&'v str> {
        if allowed.contains(&item.value.as_str()) {
            Ok(item.value.as_str())
        } else {
            Err(self.error(&join(section, &item.key), item.line, message))
        }
    }

    /// logconfig.c's destinations: `yes`/`on` or `no`/`off`.
    pub(super) fn on_off(&self, section: &str, item: &Item) -> Result<bool> {
        match item.value.as_str() {
            "yes" | "on" => Ok(true),
            "no" | "off" => Ok(false),
            _ => Err(self.error(
                &join(section, &item.key),
                item.line,
                format!("unknown value for {}", item.key),
            )),
        }
    }
}

pub(super) fn join(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_owned()
    } else {
        format!("{section}.{key}")
    }
}
