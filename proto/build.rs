//! Compiles `proto/**/*.proto` with protox (pure Rust), so no `protoc` is
//! needed on the build machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/shoal/meta.proto", "proto/shoal/peer.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
