//! Runnable examples of mo (see the `[[example]]` targets): `cargo run -p mo-examples --example NAME`.
