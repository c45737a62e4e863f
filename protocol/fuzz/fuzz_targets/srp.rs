#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| totem_wire::fuzzing::srp_round_trip(data));
