//! EVS group keys as the views show them and as `--group` names them. A key is 32 bytes
//! compared whole (EVS-JOIN-6: 1.4 `memcmp`s all 32), so two keys that differ only after
//! their first NUL are different groups and must never print alike.

use totem_wire::exec::cpg::{escape_name, unescape_name};
use totem_wire::exec::evs::{EvsGroup, EVS_GROUP_LEN};
use totem_wire::ipc::evs::{EvsRequestId, EvsResponseId};

/// The text of a key: when every byte before the trailing NULs is printable ASCII (and
/// there is at least one), those bytes as escaped text (`key1`; a backslash as `\\`);
/// otherwise `0x` and the 64 hex digits of all 32 bytes. The two forms cannot meet: printable
/// text is at most 64 characters and never a hex string of 66.
pub fn key_text(key: &EvsGroup) -> String {
    let used = key.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let head = &key[..used];
    if !head.is_empty() && head.iter().all(|b| (b' '..=b'~').contains(b)) {
        return escape_name(head);
    }
    let mut text = String::with_capacity(2 + 2 * EVS_GROUP_LEN);
    text.push_str("0x");
    for b in key {
        text.push_str(&format!("{b:02x}"));
    }
    text
}

/// The key a `--group` argument names: what [`key_text`] prints (`0x` and exactly 64 hex
/// digits, or text), or text in the escaped notation (`a\x00b`), NUL-padded. Shorter `0x...`
/// is text, as a printable key of that spelling prints. `None` when it cannot be a key
/// (longer than 32 bytes, bad escapes).
pub fn key_from_text(text: &str) -> Option<EvsGroup> {
    let bytes = match text.strip_prefix("0x") {
        Some(hex) if hex.len() == 2 * EVS_GROUP_LEN => {
            let parsed: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect();
            match parsed {
                Some(b) => b,
                None => unescape_name(text).ok()?,
            }
        }
        _ => unescape_name(text).ok()?,
    };
    if bytes.len() > EVS_GROUP_LEN {
        return None;
    }
    let mut key = [0u8; EVS_GROUP_LEN];
    key[..bytes.len()].copy_from_slice(&bytes);
    Some(key)
}

/// Is `name` the name of an evs IPC request, response or event (`MCAST_GROUPS`,
/// `DELIVER_CALLBACK` or `DELIVER`)? For `--type` on IPC recordings.
pub fn is_ipc_message_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let known = |n: &str| n == upper || n.strip_suffix("_CALLBACK") == Some(upper.as_str());
    EvsRequestId::KNOWN
        .iter()
        .any(|id| id.known_name().is_some_and(known))
        || EvsResponseId::KNOWN
            .iter()
            .any(|id| id.known_name().is_some_and(known))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &[u8]) -> EvsGroup {
        let mut k = [0u8; EVS_GROUP_LEN];
        k[..name.len()].copy_from_slice(name);
        k
    }

    #[test]
    fn printable_keys_read_as_text_and_others_as_all_32_bytes() {
        assert_eq!(key_text(&key(b"key1")), "key1");
        assert_eq!(key_text(&key(b"a\\b")), "a\\\\b");
        assert_eq!(key_text(&[b'k'; 32]), "k".repeat(32));
        // Differs from "a" only after the first NUL: not "a".
        let hidden = key_text(&key(b"a\0b"));
        assert_eq!(hidden, format!("0x610062{}", "00".repeat(29)));
        assert_ne!(hidden, key_text(&key(b"a")));
        assert_eq!(key_text(&[0; 32]), format!("0x{}", "00".repeat(32)));
        assert_eq!(key_text(&key(b"\xff")).len(), 66);
    }

    #[test]
    fn a_group_argument_names_the_key_either_way() {
        for k in [key(b"key1"), key(b"a\0b"), [0; 32], [0xff; 32], key(b"0x")] {
            assert_eq!(key_from_text(&key_text(&k)), Some(k), "{}", key_text(&k));
        }
        assert_eq!(key_from_text("a\\x00b"), Some(key(b"a\0b")));
        assert_eq!(key_from_text("0x6162"), Some(key(b"0x6162")));
        assert_eq!(key_from_text(&"k".repeat(33)), None);
        assert_eq!(key_from_text("bad\\q"), None);
    }
}
