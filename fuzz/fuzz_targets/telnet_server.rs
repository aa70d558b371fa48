//! Fuzz what a client sends to a per-console telnet or RFC 2217 port
//! (`mo_core::door::telnet::Server`, `ComPort`) and the `--listen`/`--listen-allow` values
//! (`mo_core::door::listen`). Never a panic; the same events however the bytes are split (up to
//! the first error); a subnegotiation never grows past its limit; every COM-PORT answer is a
//! well-formed `IAC SB 44 … IAC SE`; escaped output unescapes to itself; specifications that parse
//! print back to themselves.
//!
//! Input: the first byte picks where to split the rest and whether COM-PORT is offered.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mo_core::door::listen::{Cidr, ListenSpec};
use mo_core::door::telnet::{
    ComPort, Event, IAC, LineSettings, OPT_COM_PORT, SB, SE, Server, escape,
};

fn events(chunks: &[&[u8]], rfc2217: bool) -> Result<Vec<Event>, String> {
    let mut server = Server::new(rfc2217);
    let _ = server.greeting();
    let mut out: Vec<Event> = Vec::new();
    for chunk in chunks {
        for event in server.feed(chunk).map_err(|e| e.to_string())? {
            match (out.last_mut(), event) {
                (Some(Event::Data(a)), Event::Data(b)) => a.extend(b),
                (_, event) => out.push(event),
            }
        }
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(first >> 1).min(rest.len());
    let (a, b) = rest.split_at(at);
    let rfc2217 = first & 1 == 1;

    let whole = events(&[rest], rfc2217);
    let split = events(&[a, b], rfc2217);
    if let (Ok(whole), Ok(split)) = (&whole, &split) {
        assert_eq!(whole, split);
    }
    assert_eq!(whole.is_err(), split.is_err());

    let mut port = ComPort::new(LineSettings::default(), first & 2 == 2);
    for event in whole.unwrap_or_default() {
        if let Event::Com(request) = event {
            let (reply, _) = port.answer(&request);
            if !reply.is_empty() {
                assert!(reply.starts_with(&[IAC, SB, OPT_COM_PORT]));
                assert!(reply.ends_with(&[IAC, SE]));
            }
        }
    }

    // Escaped output reads back as the same data.
    let mut reader = Server::new(false);
    let back = reader.feed(&escape(rest)).unwrap_or_default();
    let joined: Vec<u8> = back
        .into_iter()
        .filter_map(|e| match e {
            Event::Data(d) => Some(d),
            _ => None,
        })
        .flatten()
        .collect();
    // Telnet drops a NUL after CR: compare without those.
    let mut expected = Vec::new();
    let mut after_cr = false;
    for &byte in rest {
        if !(after_cr && byte == 0) {
            expected.push(byte);
        }
        after_cr = byte == b'\r';
    }
    assert_eq!(joined, expected);

    if let Ok(text) = std::str::from_utf8(rest) {
        if let Ok(spec) = text.parse::<ListenSpec>() {
            assert_eq!(spec.to_string().parse::<ListenSpec>().ok(), Some(spec));
        }
        if let Ok(net) = text.parse::<Cidr>() {
            assert_eq!(net.to_string().parse::<Cidr>().ok(), Some(net));
            let _ = net.contains(std::net::IpAddr::from([127, 0, 0, 1]));
        }
    }
});
