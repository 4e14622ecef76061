//! Records the git commit sampo was built from (written into every output
//! file), or "unknown" outside a git checkout.

fn git(args: &[&str]) -> Option<String> {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn main() {
    let hash = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SAMPO_GIT_HASH={hash}");
    // Rebuild when HEAD moves. In a linked worktree `.git` is a file and
    // HEAD lives elsewhere, so ask git where; a path that does not exist
    // would make cargo rerun this script (and rebuild sampo) every time.
    for name in ["HEAD", "refs", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
