#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::io::Write as _;

use clap::{Arg, ArgAction, Command};

use super::*;

fn cmd() -> Command {
    Command::new("mod")
        .arg(
            Arg::new("config")
                .long("config")
                .value_parser(clap::value_parser!(PathBuf)),
        )
        .arg(Arg::new("ssh").long("ssh").default_value("127.0.0.1:2222"))
        .arg(
            Arg::new("segment_mib")
                .long("segment-mib")
                .value_parser(clap::value_parser!(u64))
                .default_value("64"),
        )
        .arg(Arg::new("demo").long("demo").action(ArgAction::SetTrue))
        .arg(
            Arg::new("origin")
                .long("allowed-origin")
                .action(ArgAction::Append),
        )
        .arg(Arg::new("db_password").long("db-password"))
}

fn with_file(text: &str, extra: &[&str]) -> (tempfile::NamedTempFile, Result<Loaded, LoadError>) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let mut argv: Vec<OsString> = vec!["mod".into(), "--config".into(), file.path().into()];
    argv.extend(extra.iter().map(OsString::from));
    let loaded = load(&cmd(), &argv);
    (file, loaded)
}

#[test]
fn the_file_fills_in_what_the_flags_do_not_say() {
    let (_f, loaded) = with_file(
        "ssh = \"0.0.0.0:22\"\nsegment_mib = 8\ndemo = true\nallowed-origin = [\"a\", \"b\"]\n",
        &["--ssh", "127.0.0.1:1"],
    );
    let loaded = loaded.unwrap();
    let m = &loaded.matches;
    assert_eq!(m.get_one::<String>("ssh").unwrap(), "127.0.0.1:1");
    assert_eq!(*m.get_one::<u64>("segment_mib").unwrap(), 8);
    assert!(m.get_flag("demo"));
    let origins: Vec<&String> = m.get_many::<String>("origin").unwrap().collect();
    assert_eq!(origins, ["a", "b"]);
    let text = effective(&cmd(), &loaded, &(PathBuf::from("/d"), "given"));
    assert!(text.contains("ssh = \"127.0.0.1:1\"  # flag"), "{text}");
    assert!(text.contains("segment-mib = 8  # file"), "{text}");
    assert!(
        text.contains("allowed-origin = [\"a\", \"b\"]  # file"),
        "{text}"
    );
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_file_and_line() {
    let (f, loaded) = with_file("ssh = \"127.0.0.1:1\"\n\nsssh = 1\n", &[]);
    let err = loaded.unwrap_err().to_string();
    let at = format!("{}:3", f.path().display());
    assert!(
        err.contains(&at) && err.contains("unknown key `sssh`"),
        "{err}"
    );

    let (f, loaded) = with_file("segment-mib = \"lots\"\n", &[]);
    let err = loaded.unwrap_err().to_string();
    assert!(err.contains(&format!("{}:1", f.path().display())), "{err}");
    assert!(err.contains("segment-mib") && err.contains("lots"), "{err}");

    let (_f, loaded) = with_file("demo = \"yes\"\n", &[]);
    assert!(loaded.unwrap_err().to_string().contains("true or false"));

    let (_f, loaded) = with_file("config = \"x\"\n", &[]);
    assert!(
        loaded
            .unwrap_err()
            .to_string()
            .contains("unknown key `config`")
    );

    let (_f, loaded) = with_file("ssh = \n", &[]);
    assert!(loaded.is_err());
}

#[test]
fn secrets_are_redacted() {
    let (_f, loaded) = with_file("db-password = \"hunter2\"\n", &[]);
    let text = effective(&cmd(), &loaded.unwrap(), &(PathBuf::from("/d"), "given"));
    assert!(
        !text.contains("hunter2") && text.contains("(redacted)"),
        "{text}"
    );
}

#[test]
fn the_data_directory_follows_the_service_or_the_user() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    };
    let dir = |vars| default_data_dir(env(vars)).unwrap().0;
    assert_eq!(
        dir(&[
            ("STATE_DIRECTORY", "/var/lib/mo:/var/lib/x"),
            ("HOME", "/h")
        ]),
        PathBuf::from("/var/lib/mo")
    );
    assert_eq!(
        dir(&[("INVOCATION_ID", "abc"), ("HOME", "/h")]),
        PathBuf::from("/var/lib/mo")
    );
    assert_eq!(
        dir(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")]),
        PathBuf::from("/x/mo")
    );
    assert_eq!(
        dir(&[("XDG_DATA_HOME", "rel"), ("HOME", "/h")]),
        PathBuf::from("/h/.local/share/mo")
    );
    assert!(default_data_dir(env(&[])).is_err());
}
