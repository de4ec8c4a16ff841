#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shoal::s3::fuzz_targets::sigv4(data);
});
