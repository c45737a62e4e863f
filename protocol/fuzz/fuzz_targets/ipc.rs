#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| totem_wire::fuzzing::ipc_round_trip(data));
