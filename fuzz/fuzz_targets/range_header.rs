#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shoal::s3::fuzz_targets::range_header(data);
});
