//! `open_enum!`: a wire enum that keeps values it does not know.
//!
//! Like smoltcp's `enum_with_unknown!`: every known value has a variant, anything else is
//! `Unknown(raw)` and converts back to the same raw value, so a message with a value from a
//! newer corosync round-trips byte for byte.

macro_rules! open_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident($ty:ty) {
            $(
                $(#[$vattr:meta])*
                $variant:ident = $value:expr => $text:expr
            ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $(
                $(#[$vattr])*
                $variant,
            )+
            /// A value this codec does not know, kept as it was on the wire.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( v if v == $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// Every value the codec knows, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// corosync's name for the value, or `None` when unknown.
            pub fn known_name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($text), )+
                    $name::Unknown(_) => None,
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.known_name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "UNKNOWN({:#x})", <$ty>::from(*self)),
                }
            }
        }
    };
}
pub(crate) use open_enum;
