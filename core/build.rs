//! Embeds every `functions/modules/*/module.yaml` into the library as the baseline registry,
//! so functions read no manifest file at run time.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let modules = manifest_dir.join("../functions/modules");
    println!("cargo:rerun-if-changed={}", modules.display());
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&modules) {
        for entry in entries.flatten() {
            let path = entry.path().join("module.yaml");
            if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
                let name = entry.file_name().to_string_lossy().into_owned();
                found.push((format!("functions/modules/{name}/module.yaml"), path));
            }
        }
    }
    found.sort();
    let mut out = String::from(
        "/// `(path, text)` of the manifests compiled into this build.\npub const BUILTIN_MANIFESTS: &[(&str, &str)] = &[\n",
    );
    for (rel, path) in &found {
        let abs = path.canonicalize().unwrap_or_else(|_| path.clone());
        let _ = writeln!(
            out,
            "    ({rel:?}, include_str!({:?})),",
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("builtin_manifests.rs"), out) {
        panic!("cannot write builtin_manifests.rs: {e}");
    }
}
