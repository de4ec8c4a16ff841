#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shoal_shard::fuzz_targets::peer_frame(data);
});
