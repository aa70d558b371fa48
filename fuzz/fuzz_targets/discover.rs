//! Fuzz the discovery answer parsers (mo_drivers::discover::parse): RMCP/IPMI pre-session
//! replies (presence pong, authentication capabilities, cipher suites), TCP banners and telnet
//! negotiation scans, and Redfish JSON. None may panic, whatever the bytes; what they return
//! stays bounded.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_drivers::discover::parse::{self, Banner};

fuzz_target!(|data: &[u8]| {
    let tag = data.first().copied().unwrap_or(0);
    let _ = parse::is_pong(data, tag);
    if let Ok(Ok(caps)) = parse::parse_auth_caps(data) {
        assert!(caps.auth_types.len() <= 5);
    }
    if let Ok(Ok(block)) = parse::parse_cipher_suites_block(data) {
        assert!(block.len() < data.len());
    }
    let ids = parse::cipher_suite_ids(data);
    assert!(ids.len() <= 256);
    match parse::classify_banner(data) {
        Banner::Ssh(line) | Banner::Text(line) => assert!(line.chars().count() <= 120),
        Banner::Telnet | Banner::Binary | Banner::Empty => {}
    }
    assert!(parse::clean_text(data, 80).chars().count() <= 80);
    let _ = parse::has_command(data, 0xFD, 44);
    if let Ok(root) = parse::parse_service_root(data) {
        assert!(root.vendor.chars().count() <= 60);
    }
    assert!(parse::parse_collection(data, 16).len() <= 16);
    let _ = parse::parse_system("/redfish/v1/Systems/1", data);
});
