//! Small shared helpers of the decoders: a fast hasher for integer keys, and the interner
//! that shares CPG group names between the records that name them.

use std::collections::HashMap;
use std::sync::Arc;

use totem_wire::exec::cpg::CpgName;

/// A multiply-rotate hasher for small integer keys (FxHash's scheme): the dedup window is
/// looked up for every MCAST, and SipHash's flood resistance buys nothing for a file.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Builds [`FxHasher`]s.
pub type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// Shares one allocation per distinct CPG group name (a capture names a handful, and
/// every message of a group would otherwise copy it). Bounded: past the limit names are
/// not interned. Keyed by the name's identity: its first `length` bytes.
#[derive(Default)]
pub struct NameInterner {
    names: HashMap<Vec<u8>, Arc<str>, FxBuild>,
}

/// Distinct names kept by a [`NameInterner`].
const INTERNED_NAMES_MAX: usize = 4096;

impl NameInterner {
    /// The shared text of `name`.
    pub fn intern(&mut self, name: &CpgName) -> Arc<str> {
        if let Some(shared) = self.names.get(name.as_bytes()) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(name.to_string());
        if self.names.len() < INTERNED_NAMES_MAX {
            self.names.insert(name.as_bytes().to_vec(), shared.clone());
        }
        shared
    }
}
