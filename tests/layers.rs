//! The library's modules import one another in one direction only: each
//! module of `LAYERS` may name (`crate::…`) only the modules before it, so
//! there is no circle and a lower layer never reaches up into a higher one.

use std::path::{Path, PathBuf};

/// Bottom to top. A module not listed here fails the test until it is
/// placed.
const LAYERS: &[&str] = &[
    "seed", "numeric", "limits", "table", "model", "diag", "output", "report", "spec", "jobs",
    "exec", "summary", "plot",
];

fn files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            files(&entry.unwrap().path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The modules `crate::name` names in a file.
fn imports(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .filter(|(at, _)| !text[..*at].ends_with('$'))
        .map(|(at, m)| {
            text[at + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut problems = Vec::new();
    for line in lib.lines().filter(|l| l.starts_with("pub mod ")) {
        let module = line.trim_start_matches("pub mod ").trim_end_matches(';');
        let Some(level) = LAYERS.iter().position(|l| *l == module) else {
            problems.push(format!("`{module}` has no place in LAYERS"));
            continue;
        };
        let mut paths = Vec::new();
        files(&src.join(module), &mut paths);
        files(&src.join(format!("{module}.rs")), &mut paths);
        assert!(!paths.is_empty(), "no source for `{module}`");
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            for used in imports(&text) {
                if used == module {
                    continue;
                }
                match LAYERS.iter().position(|l| *l == used) {
                    Some(u) if u < level => {}
                    Some(_) => problems.push(format!(
                        "{} (layer `{module}`) imports `crate::{used}`, a higher layer",
                        path.display()
                    )),
                    None => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
