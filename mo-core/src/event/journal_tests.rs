#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn a_journal_entry_gives_its_message_identifier_unit_and_time() {
    let line = br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1795000000123456","MESSAGE":"kernel: Oops","SYSLOG_IDENTIFIER":"kernel","_SYSTEMD_UNIT":"init.scope","PRIORITY":"3"}"#;
    let e = parse_line(line).unwrap().unwrap();
    assert_eq!(e.message, "kernel: Oops");
    assert_eq!(e.identifier.as_deref(), Some("kernel"));
    assert_eq!(e.unit.as_deref(), Some("init.scope"));
    assert_eq!(e.time_ns, Some(1_795_000_000_123_456_000));
}

#[test]
fn binary_messages_are_decoded_lossily_and_odd_fields_ignored() {
    // journalctl writes non-UTF-8 messages as arrays of byte values.
    let e = parse_line(br#"{"MESSAGE":[104,105,255,10,33],"__REALTIME_TIMESTAMP":"x"}"#)
        .unwrap()
        .unwrap();
    assert_eq!(e.message, "hi\u{fffd}\n!");
    assert_eq!(e.time_ns, None, "a bad timestamp is ignored");
    // An array with a value that is not a byte is no message.
    assert_eq!(parse_line(br#"{"MESSAGE":[104,300]}"#).unwrap(), None);
    assert_eq!(parse_line(br#"{"MESSAGE":null}"#).unwrap(), None);
    assert_eq!(parse_line(br#"{"OTHER":"x"}"#).unwrap(), None);
    assert_eq!(parse_line(b"   \n").unwrap(), None);
    // A timestamp that overflows ns is dropped, not wrapped.
    let e = parse_line(br#"{"MESSAGE":"m","__REALTIME_TIMESTAMP":"9223372036854775807"}"#)
        .unwrap()
        .unwrap();
    assert_eq!(e.time_ns, None);
}

#[test]
fn what_is_not_a_journal_entry_is_refused_with_a_reason() {
    for (line, why) in [
        (&b"not json"[..], "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b"\"MESSAGE\"", "not a JSON object"),
        (b"{\"MESSAGE\":\"a\"", "not JSON"),
    ] {
        let err = parse_line(line).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    let long = vec![b' '; MAX_JOURNAL_LINE + 10];
    let mut long_json = b"{\"MESSAGE\":\"".to_vec();
    long_json.extend(std::iter::repeat_n(b'a', MAX_JOURNAL_LINE));
    long_json.extend(b"\"}");
    assert!(parse_line(&long).unwrap().is_none());
    assert!(parse_line(&long_json).unwrap_err().contains("longer"));
}

#[test]
fn entries_are_checked_and_become_journalctl_arguments() {
    let j = Journal::from_config(&JournalConfig::default()).unwrap();
    assert_eq!(j.device, DEFAULT_JOURNAL_DEVICE);
    assert_eq!(j.args(), ["-f", "-o", "json", "-n", "0", "--no-pager"]);
    assert_eq!(j.label(), "journal");
    let j = Journal::from_config(&JournalConfig {
        unit: Some(" nginx.service ".into()),
        identifier: Some("kernel".into()),
        device: Some("web1".into()),
    })
    .unwrap();
    assert_eq!(&j.args()[6..], ["-u", "nginx.service", "-t", "kernel"]);
    assert_eq!(j.device, "web1");
    assert_eq!(j.label(), "journal (unit nginx.service, identifier kernel)");
    for bad in [
        JournalConfig {
            unit: Some("--root=/".into()),
            ..JournalConfig::default()
        },
        JournalConfig {
            identifier: Some(" ".into()),
            ..JournalConfig::default()
        },
        JournalConfig {
            device: Some("a\nb".into()),
            ..JournalConfig::default()
        },
    ] {
        let err = Journal::from_config(&bad).unwrap_err().to_string();
        assert!(
            err.contains("[[journal]]") && err.contains("field `"),
            "{err}"
        );
    }
    let parsed: JournalConfig = toml::from_str("unit = \"a\"\nidentifier = \"b\"\n").unwrap();
    assert_eq!(parsed.unit.as_deref(), Some("a"));
    assert!(toml::from_str::<JournalConfig>("units = \"a\"\n").is_err());
}
