#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| totem_wire::fuzzing::pg_round_trip(data));
