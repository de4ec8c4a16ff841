// The same build script as the node: sets SHOAL_COMMIT.
include!("../build.rs");
