// Names the commit a binary was built from, for `--version` and the
// `shoal_build_info` metric: sets `SHOAL_COMMIT` to the short hash of
// `HEAD` (`unknown` outside a git checkout). `bench/` and `tools/`
// include this file as their build script too, so every binary says the
// same thing the same way. (Two checkouts that share one target directory
// share this script's output too, since cargo names path packages by their
// place in the workspace: the commit is the one of whichever built last,
// until the other's git files change.)

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SHOAL_COMMIT={commit}");
    // Rebuild when HEAD moves: a commit, a checkout or a rebase changes
    // HEAD itself, the branch it points to, or the packed refs. Only files
    // that exist: cargo takes a missing one as changed, every build.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
        let mut watched = vec![git_dir.join("HEAD"), git_dir.join("packed-refs")];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(git_dir.join(branch));
        }
        for path in watched.iter().filter(|path| path.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
