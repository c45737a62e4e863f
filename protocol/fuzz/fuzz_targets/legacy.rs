#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| totem_wire::fuzzing::legacy_round_trip(data));
