//! Fuzz the HTTP API's credentials (mo_core::door::auth: the `Authorization` header and the
//! `?token=` query parameter; mo_store's token splitting and token scopes): never a panic; the
//! scheme word is matched without regard to case and blanks around the value change nothing;
//! Basic credentials built from any user (without `:`) and password read back to them; an error
//! never repeats the credentials; a token splits only into lowercase hex of the right lengths and
//! joins back to itself; a scope that parses prints to text that parses to it.
//!
//! Input: the header value's text (also used as a query string, a token and a scope).

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use mo_core::door::auth::{Credentials, parse_authorization, query_token};
use mo_store::{TokenScope, split_token};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    let got = parse_authorization(&text);
    assert_eq!(got, parse_authorization(&format!("  {text}\t ")));
    if let Some((scheme, rest)) = text.trim().split_once(' ') {
        let flipped: String = scheme
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        let again = parse_authorization(&format!("{flipped} {rest}"));
        assert_eq!(got.as_ref().ok(), again.as_ref().ok());
        assert_eq!(got.is_err(), again.is_err());
        if let Err(e) = &got {
            // The error is one of three messages: what follows the scheme (the credentials)
            // is never in it.
            let known = [
                format!("unsupported Authorization scheme `{scheme}` (use Bearer TOKEN or Basic)"),
                "the Basic credentials are not base64 of user:password".to_string(),
                "the Basic credentials lack the `:` between user and password".to_string(),
            ];
            assert!(known.contains(&e.reason), "{e:?} for {text:?}");
        }
    }

    // Basic credentials from the input: split at its first `:` ... or none.
    let (user, password) = text.split_once(':').unwrap_or((&text, ""));
    let user = user.replace(':', "");
    let header = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
    assert_eq!(
        parse_authorization(&header),
        Ok(Credentials::Basic {
            user: user.clone(),
            password: password.to_string()
        })
    );
    assert_eq!(
        parse_authorization(&format!("bearer {}", text.trim())),
        Ok(Credentials::Token(text.trim().to_string()))
    );

    if let Some(token) = query_token(&text) {
        assert!(!token.contains('&'));
        assert_eq!(query_token(&format!("a=b&{text}")), Some(token));
    }

    if let Some((id, secret)) = split_token(&text) {
        let hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        assert!(id.len() == 16 && secret.len() == 64 && hex(id) && hex(secret));
        assert_eq!(format!("mo_{id}_{secret}"), text.trim());
    }

    if let Ok(scope) = TokenScope::parse(&text) {
        let shown = scope.to_string();
        assert_eq!(
            TokenScope::parse(&shown).ok(),
            Some(scope),
            "{text:?} -> {shown:?}"
        );
    }
});
