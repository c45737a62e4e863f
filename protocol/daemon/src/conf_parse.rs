//! The corosync.conf grammar, read as corosync 3.1.7 reads it
//! (`exec/coroparse.c::parse_section`): one directive per line, `name {` opens a section,
//! `}` alone closes it, `key: value` sets a key. Only whole-line comments exist (first
//! non-blank character `#`); there is no quoting: a value is everything after the first `:`,
//! trimmed, quotes and `#` included, as corosync stores it in cmap.

use std::fmt;

/// The longest line `fgets` reads into coroparse's 512-byte buffer, without its newline.
const LINE_MAX: usize = 510;

/// `key: value` at `line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The key, trimmed, trailing `:` removed.
    pub key: String,
    /// The value, verbatim after trimming.
    pub value: String,
    /// 1-based line number.
    pub line: u32,
}

/// `name { ... }` opened at `line`; the file itself is a section named "".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// The section name.
    pub name: String,
    /// Where it was opened (0 for the file).
    pub line: u32,
    /// Its keys, in file order.
    pub items: Vec<Item>,
    /// Its subsections, in file order.
    pub sections: Vec<Section>,
}

/// A syntax error, worded as corosync words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line number.
    pub line: u32,
    /// coroparse's message.
    pub message: &'static str,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// `remove_whitespace(s, 1)`: trims blanks and, at the end, any run of `:`, `{` and blanks.
fn trim_key(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
        .trim_end_matches([' ', '\t', ':', '{'])
}

/// Parses a whole file into its root section.
pub fn parse(text: &str) -> Result<Section, SyntaxError> {
    let mut stack: Vec<Section> = vec![Section::default()];
    let mut line_no = 0u32;
    for raw in text.split_inclusive('\n') {
        line_no += 1;
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        if line.len() > LINE_MAX {
            return Err(SyntaxError {
                line: line_no,
                message: "Line too long",
            });
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = line.trim_end_matches([' ', '\t']);
        let content = line.trim_start_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        // The order of the checks is coroparse's: '{' first, then ':', then '}'.
        if let Some((before, after)) = line.split_once('{') {
            let name = trim_key(before);
            if name.is_empty() {
                return Err(SyntaxError {
                    line: line_no,
                    message: "Missing section name before opening bracket '{'",
                });
            }
            if !after.trim_matches([' ', '\t']).is_empty() {
                return Err(SyntaxError {
                    line: line_no,
                    message: "Extra characters after opening bracket '{'",
                });
            }
            stack.push(Section {
                name: name.to_owned(),
                line: line_no,
                ..Section::default()
            });
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            let item = Item {
                key: trim_key(key).to_owned(),
                value: value.trim_matches([' ', '\t']).to_owned(),
                line: line_no,
            };
            if let Some(top) = stack.last_mut() {
                top.items.push(item);
            }
            continue;
        }
        if line.contains('}') {
            if content != "}" {
                return Err(SyntaxError {
                    line: line_no,
                    message: "Extra characters before or after closing bracket '}'",
                });
            }
            if stack.len() == 1 {
                return Err(SyntaxError {
                    line: line_no,
                    message: "Unexpected closing brace",
                });
            }
            if let (Some(done), Some(parent)) = (stack.pop(), stack.last_mut()) {
                parent.sections.push(done);
            }
            continue;
        }
        return Err(SyntaxError {
            line: line_no,
            message: "Line is not opening or closing section or key value",
        });
    }
    if stack.len() > 1 {
        return Err(SyntaxError {
            line: line_no,
            message: "Missing closing brace",
        });
    }
    Ok(stack.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_and_comments() {
        let root = parse(
            "# comment\n\
             totem {\n\
             \tversion: 2\n\
             \t  # indented comment\n\
             \tinterface{\n\
             \t\tmcastport:   5405  \r\n\
             \t}\n\
             }\n\
             top: level\n",
        )
        .unwrap();
        assert_eq!(root.items[0].key, "top");
        assert_eq!(root.items[0].line, 9);
        let totem = &root.sections[0];
        assert_eq!((totem.name.as_str(), totem.line), ("totem", 2));
        assert_eq!(totem.items[0].value, "2");
        let iface = &totem.sections[0];
        assert_eq!(iface.name, "interface");
        assert_eq!(
            iface.items[0],
            Item {
                key: "mcastport".into(),
                value: "5405".into(),
                line: 6
            }
        );
    }

    #[test]
    fn values_are_verbatim_after_the_first_colon() {
        let root = parse("a: fe80::1\nb: \"quoted\" # not a comment\nc:\n").unwrap();
        let values: Vec<&str> = root.items.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, ["fe80::1", "\"quoted\" # not a comment", ""]);
    }

    #[test]
    fn coroparse_errors_with_their_line() {
        let cases = [
            ("a {\n", 1, "Missing closing brace"),
            ("}\n", 1, "Unexpected closing brace"),
            (
                "a {\n} x\n",
                2,
                "Extra characters before or after closing bracket '}'",
            ),
            ("a { b\n", 1, "Extra characters after opening bracket '{'"),
            (
                "  {\n",
                1,
                "Missing section name before opening bracket '{'",
            ),
            (
                "\nnonsense\n",
                2,
                "Line is not opening or closing section or key value",
            ),
        ];
        for (text, line, message) in cases {
            assert_eq!(parse(text), Err(SyntaxError { line, message }), "{text:?}");
        }
        let long = format!("k: {}\n", "x".repeat(600));
        assert_eq!(parse(&long).unwrap_err().message, "Line too long");
    }

    #[test]
    fn a_colon_before_the_brace_is_part_of_the_section_name_syntax() {
        let root = parse("totem: {\n}\n").unwrap();
        assert_eq!(root.sections[0].name, "totem");
    }
}
