//! The workspace's layering, checked from `cargo metadata` (DESIGN.md §1: dependencies point
//! inward). The rules:
//!
//! - mo-core depends on no other mo crate (as a dev-dependency only on the test support crate);
//! - mo-drivers and mo-store do not know each other, directly or through another mo crate;
//! - the bindings (mo-python, mo-node, mo-ffi) do not reach mo-daemon, directly or through
//!   another mo crate;
//! - each library crate's tokio has only the features of its allowlist: the core names no
//!   transport (no `net`, no `process`); the store, the API types and the client run no programs.
//!
//! A broken rule fails with a message naming the crate, the dependency or feature, and the rule.
//! The checker itself is tested on doctored metadata, so a rule that could never fire is caught.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The tokio features each library crate may enable (in its normal dependencies), and why.
const TOKIO_ALLOWED: &[(&str, &[&str], &str)] = &[
    (
        "mo-core",
        &["rt", "macros", "sync", "time", "io-util"],
        "mo-core is the domain and the data path and names no transport: no `net`, no `process` \
         (links come from mo-drivers through the Connector trait)",
    ),
    (
        "mo-drivers",
        &[
            "rt",
            "rt-multi-thread",
            "macros",
            "sync",
            "time",
            "io-util",
            "net",
            "fs",
            "process",
            "signal",
        ],
        "mo-drivers owns the transports",
    ),
    (
        "mo-store",
        &[
            "rt",
            "rt-multi-thread",
            "macros",
            "sync",
            "time",
            "fs",
            "io-util",
        ],
        "mo-store persists and names no transport: no `net`, no `process`",
    ),
    (
        "mo-api",
        &[],
        "mo-api holds plain request and response types and needs no runtime",
    ),
    (
        "mo-client",
        &[
            "rt",
            "rt-multi-thread",
            "macros",
            "sync",
            "time",
            "io-util",
            "net",
        ],
        "mo-client talks to a daemon's API and runs no programs: no `process`, `signal` or `fs`",
    ),
];

/// The bindings' package names.
const BINDINGS: &[&str] = &["mo-python", "mo-node", "mo-ffi"];

/// One dependency of a workspace package, as the manifest declares it.
#[derive(Debug, Clone)]
struct Dep {
    name: String,
    /// `normal`, `dev` or `build`.
    kind: String,
    features: Vec<String>,
}

/// The workspace's packages (name -> declared dependencies) from `cargo metadata --no-deps` JSON.
fn packages(metadata: &Value) -> Result<BTreeMap<String, Vec<Dep>>, String> {
    let list = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata: no `packages` array")?;
    let mut out = BTreeMap::new();
    for p in list {
        let name = p["name"]
            .as_str()
            .ok_or("cargo metadata: a package without a name")?;
        let deps = p["dependencies"]
            .as_array()
            .ok_or_else(|| format!("cargo metadata: {name} has no `dependencies` array"))?
            .iter()
            .map(|d| Dep {
                name: d["name"].as_str().unwrap_or_default().to_owned(),
                kind: d["kind"].as_str().unwrap_or("normal").to_owned(),
                features: d["features"]
                    .as_array()
                    .map(|f| {
                        f.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        out.insert(name.to_owned(), deps);
    }
    Ok(out)
}

/// The workspace crates `from` reaches through normal and build dependencies on workspace
/// crates, each with the path that reaches it (`a -> b -> c`).
fn reach(pkgs: &BTreeMap<String, Vec<Dep>>, from: &str) -> BTreeMap<String, String> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut todo = vec![(from.to_owned(), from.to_owned())];
    while let Some((name, path)) = todo.pop() {
        for d in pkgs.get(&name).into_iter().flatten() {
            if d.kind == "dev" || !pkgs.contains_key(&d.name) || seen.contains_key(&d.name) {
                continue;
            }
            let next = format!("{path} -> {}", d.name);
            seen.insert(d.name.clone(), next.clone());
            todo.push((d.name.clone(), next));
        }
    }
    seen
}

/// Every broken rule, one message each (empty when the layering holds).
fn violations(metadata: &Value) -> Result<Vec<String>, String> {
    let pkgs = packages(metadata)?;
    let mut out = Vec::new();

    if let Some(deps) = pkgs.get("mo-core") {
        for d in deps {
            let allowed = d.kind == "dev" && d.name == "mo-testsupport";
            if pkgs.contains_key(&d.name) && !allowed {
                out.push(format!(
                    "mo-core has a {} dependency on {}: rule \"mo-core depends on no other mo \
                     crate\" (dependencies point inward; move the code that needs {} out of \
                     mo-core or behind a trait)",
                    d.kind, d.name, d.name
                ));
            }
        }
    } else {
        out.push("mo-core is missing from the workspace metadata".into());
    }

    for (a, b) in [("mo-drivers", "mo-store"), ("mo-store", "mo-drivers")] {
        let direct_dev = pkgs
            .get(a)
            .into_iter()
            .flatten()
            .any(|d| d.name == b && d.kind == "dev");
        if let Some(path) = reach(&pkgs, a).get(b) {
            out.push(format!(
                "{a} depends on {b} ({path}): rule \"mo-drivers and mo-store do not know each \
                 other\" (the daemon or the CLI wires them together)"
            ));
        } else if direct_dev {
            out.push(format!(
                "{a} has a dev dependency on {b}: rule \"mo-drivers and mo-store do not know \
                 each other\" (test them together in tests/e2e)"
            ));
        }
    }

    for binding in BINDINGS {
        if !pkgs.contains_key(*binding) {
            continue;
        }
        if let Some(path) = reach(&pkgs, binding).get("mo-daemon") {
            out.push(format!(
                "{binding} depends on mo-daemon ({path}): rule \"the bindings do not depend on \
                 the daemon\" (they wrap mo-core's facade and mo-client)"
            ));
        }
    }

    for (krate, allowed, why) in TOKIO_ALLOWED {
        let Some(deps) = pkgs.get(*krate) else {
            continue;
        };
        let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
        for d in deps.iter().filter(|d| d.name == "tokio" && d.kind != "dev") {
            if allowed.is_empty() {
                out.push(format!(
                    "{krate} depends on tokio: rule \"{why}\" (its tokio allowlist is empty)"
                ));
                continue;
            }
            let extra: Vec<&str> = d
                .features
                .iter()
                .map(String::as_str)
                .filter(|f| !allowed.contains(f) && *f != "default")
                .collect();
            for f in extra {
                out.push(format!(
                    "{krate} enables tokio feature `{f}`: rule \"{why}\" (allowed: {})",
                    allowed.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    Ok(out)
}

/// `cargo metadata --no-deps` of this workspace.
fn metadata() -> Result<Value, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = mo_testsupport::workspace_root().join("Cargo.toml");
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .map_err(|e| format!("run `{cargo} metadata`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo metadata` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`cargo metadata` printed no JSON: {e}"))
}

#[test]
fn the_workspace_keeps_its_layers() -> Result<(), String> {
    let found = violations(&metadata()?)?;
    assert!(
        found.is_empty(),
        "the layering is broken:\n- {}",
        found.join("\n- ")
    );
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The checker on doctored metadata: each rule fires, and names the crate, the culprit and the rule.
// ------------------------------------------------------------------------------------------------

fn dep(name: &str, kind: Option<&str>, features: &[&str]) -> Value {
    serde_json::json!({"name": name, "kind": kind, "features": features})
}

fn workspace(packages: &[(&str, Vec<Value>)]) -> Value {
    let list: Vec<Value> = packages
        .iter()
        .map(|(name, deps)| serde_json::json!({"name": name, "dependencies": deps}))
        .collect();
    serde_json::json!({ "packages": list })
}

/// A layering that holds: the real shape, in small.
fn healthy() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "mo-core",
            vec![
                dep("tokio", None, &["rt", "sync", "time"]),
                dep("tokio", Some("dev"), &["net", "process", "test-util"]),
                dep("mo-testsupport", Some("dev"), &[]),
            ],
        ),
        (
            "mo-drivers",
            vec![
                dep("mo-core", None, &[]),
                dep("tokio", None, &["net", "process"]),
            ],
        ),
        ("mo-store", vec![dep("mo-core", None, &[])]),
        ("mo-client", vec![dep("mo-core", None, &[])]),
        (
            "mo-daemon",
            vec![dep("mo-drivers", None, &[]), dep("mo-store", None, &[])],
        ),
        (
            "mo-python",
            vec![dep("mo-core", None, &[]), dep("mo-client", None, &[])],
        ),
        ("mo-testsupport", vec![]),
    ]
}

fn with(name: &str, extra: Value) -> Value {
    let mut pkgs = healthy();
    if let Some((_, deps)) = pkgs.iter_mut().find(|(n, _)| *n == name) {
        deps.push(extra);
    }
    workspace(&pkgs)
}

fn one_violation(metadata: &Value) -> Result<String, String> {
    let found = violations(metadata)?;
    assert_eq!(found.len(), 1, "expected one violation, got {found:#?}");
    Ok(found.into_iter().next().unwrap_or_default())
}

#[test]
fn a_healthy_layering_passes() -> Result<(), String> {
    let found = violations(&workspace(&healthy()))?;
    assert!(found.is_empty(), "{found:#?}");
    Ok(())
}

#[test]
fn mo_core_depending_on_a_mo_crate_fails() -> Result<(), String> {
    // mo-core -> mo-drivers also makes mo-store (on mo-core) reach mo-drivers: both are named.
    let found = violations(&with("mo-core", dep("mo-drivers", None, &[])))?;
    assert!(
        found.iter().any(
            |m| m.starts_with("mo-core has a normal dependency on mo-drivers")
                && m.contains("mo-core depends on no other mo crate")
        ),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.contains("mo-store -> mo-core -> mo-drivers")),
        "{found:#?}"
    );
    let msg = one_violation(&with("mo-core", dep("mo-store", Some("dev"), &[])))?;
    assert!(msg.contains("dev dependency on mo-store"), "{msg}");
    Ok(())
}

#[test]
fn drivers_and_store_knowing_each_other_fails() -> Result<(), String> {
    let msg = one_violation(&with("mo-drivers", dep("mo-store", None, &[])))?;
    assert!(msg.starts_with("mo-drivers depends on mo-store"), "{msg}");
    assert!(msg.contains("do not know each other"), "{msg}");
    // Through a third crate.
    let msg = one_violation(&with("mo-store", dep("mo-daemon", Some("build"), &[])))?;
    assert!(
        msg.contains("mo-store -> mo-daemon -> mo-drivers"),
        "the path is named: {msg}"
    );
    let msg = one_violation(&with("mo-store", dep("mo-drivers", Some("dev"), &[])))?;
    assert!(msg.contains("dev dependency on mo-drivers"), "{msg}");
    Ok(())
}

#[test]
fn bindings_reaching_the_daemon_fail() -> Result<(), String> {
    let msg = one_violation(&with("mo-python", dep("mo-daemon", None, &[])))?;
    assert!(msg.starts_with("mo-python depends on mo-daemon"), "{msg}");
    assert!(
        msg.contains("the bindings do not depend on the daemon"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn a_tokio_feature_outside_the_allowlist_fails() -> Result<(), String> {
    let msg = one_violation(&with("mo-core", dep("tokio", None, &["net"])))?;
    assert!(
        msg.starts_with("mo-core enables tokio feature `net`"),
        "{msg}"
    );
    assert!(msg.contains("names no transport"), "{msg}");
    let msg = one_violation(&with("mo-client", dep("tokio", None, &["process"])))?;
    assert!(
        msg.starts_with("mo-client enables tokio feature `process`"),
        "{msg}"
    );
    // Features of dev-dependencies (tests) are not the library's.
    let found = violations(&with("mo-store", dep("tokio", Some("dev"), &["net"])))?;
    assert!(found.is_empty(), "{found:#?}");
    Ok(())
}
