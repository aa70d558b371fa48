//! `uniffi-bindgen`: uniffi's own command line, built from this workspace so that generating
//! mo-ffi's bindings needs no global install and uses exactly the uniffi version mo-ffi links
//! (`uniffi-bindgen generate --library target/release/libmo_ffi.so --language ruby …`;
//! scripts/test-ffi.sh, docs/ffi.md).

fn main() {
    uniffi::uniffi_bindgen_main()
}
