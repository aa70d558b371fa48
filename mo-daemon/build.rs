//! Rebuild `mod` when the web console's bundle (`web/dist`, embedded by http/assets.rs)
//! changes: a file added, removed or edited under it.

fn main() {
    println!("cargo:rerun-if-changed=../web/dist");
    println!("cargo:rerun-if-changed=build.rs");
}
