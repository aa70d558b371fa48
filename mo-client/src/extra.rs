//! Readiness, the caller (`GET /api/v1/me`), notes, the asciicast download, and
//! [`Client::request`]: the one untyped call under the bindings' generated methods.

use std::time::Duration;

use std::collections::HashMap;

use mo_api::{Me, NoteCreated, NoteRequest, PowerAction, PowerReport, PowerState, Ready};
use mo_core::selector::{Selector, any_many, select};
use mo_core::{Error, Result};
use reqwest::Method;
use serde_json::Value;

use crate::types::LogQuery;
use crate::{Client, Req, error, push_range, to_json};

impl Client {
    /// `GET /api/v1/ready` (no credentials needed): whether the daemon is ready for users. A
    /// daemon that is starting or stopping answers `503` with the same body, given here as
    /// `ready: false` rather than as an error.
    pub async fn ready(&self) -> Result<Ready> {
        let what = "GET /api/v1/ready";
        let server = self.server();
        let resp = self
            .http
            .get(self.url(&["api", "v1", "ready"]))
            .send()
            .await
            .map_err(|e| error::transport(&server, what, &e, Duration::ZERO))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| error::transport(&server, what, &e, Duration::ZERO))?;
        match status {
            200 | 503 => serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
                peer: server.clone(),
                reason: format!("{what}: the answer is not the JSON expected: {e}"),
            }),
            _ => Err(error::from_answer(
                &server,
                what,
                None,
                status,
                &String::from_utf8_lossy(&bytes),
                Duration::ZERO,
            )),
        }
    }

    /// `GET /api/v1/me`: the caller's user and the actions it may take, globally and per device.
    pub async fn me(&self) -> Result<Me> {
        self.json(Self::get(&["api", "v1", "me"], None)).await
    }

    /// Write a note (one line of text) into a device's record log (`mo log note`; needs
    /// `log.note`): its record number and time.
    pub async fn add_note(&self, name: &str, text: &str) -> Result<NoteCreated> {
        let body = to_json(&NoteRequest {
            text: text.to_string(),
        })?;
        self.json(Self::post(
            &["api", "v1", "devices", name, "notes"],
            body,
            Some(name),
        ))
        .await
    }

    /// A device's record log between [`LogQuery::since`] and [`LogQuery::until`] as an
    /// asciicast v2 recording (JSON lines, for `asciinema play`).
    pub async fn log_asciicast(&self, name: &str, query: &LogQuery) -> Result<String> {
        let segments = ["api", "v1", "devices", name, "log", "asciicast"];
        let mut req = Self::get(&segments, Some(name));
        push_range(&mut req.query, query);
        self.text(req).await
    }

    /// Power `action` ([`PowerAction::Status`]: only the state) on every device `targets` name
    /// — names, globs (`web*`) and `@GROUP`s, as `mo power` takes them — one after another in
    /// the order selected: each device's report, a device that failed as `ok: false` with the
    /// error as its `message`. A target that matches nothing is an [`Error::NotFound`] before
    /// anything is switched; a `@GROUP` is read with [`Client::group`] (which needs `admin`).
    pub async fn power_many(
        &self,
        targets: &[&str],
        action: PowerAction,
    ) -> Result<Vec<PowerReport>> {
        let names: Vec<String> = if any_many(targets) {
            let devices = self.devices().await?;
            let mut groups = HashMap::new();
            for target in targets {
                if let Selector::Group(g) = Selector::parse(target) {
                    groups.insert(g.to_string(), self.group(g).await?.devices);
                }
            }
            let list: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
            let picked = select(targets, &list, |g| {
                let members = groups.get(g).cloned().unwrap_or_default();
                Ok(move |d: &str| members.iter().any(|m| m == d))
            })?;
            picked.into_iter().map(str::to_string).collect()
        } else {
            targets.iter().map(|t| t.to_string()).collect()
        };
        let mut reports = Vec::new();
        for name in names {
            let status = matches!(action, PowerAction::Status);
            let answer = if status {
                self.power_status(&name).await
            } else {
                self.power(&name, action).await
            };
            reports.push(answer.unwrap_or_else(|e| PowerReport {
                device: name,
                action: (!status).then_some(action),
                ok: Some(false),
                message: Some(e.to_string()),
                results: Vec::new(),
                state: PowerState::Unknown,
            }));
        }
        Ok(reports)
    }

    /// The raw call under every typed method: `method` (`GET`, `POST`, `PUT`, `PATCH`,
    /// `DELETE`) on the path of `segments` (each percent-encoded) with `query` and a JSON `body`.
    /// The answer is its JSON, a JSON string for a text answer (a log, an asciicast) and `null`
    /// for an empty one (`204`). Errors are mapped as for the typed methods, naming `device`.
    /// `GET /api/v1/ready` answers as [`Client::ready`] does (its `503` is `ready: false`, not
    /// an error), so that the call means the same in every binding. The Python and Node
    /// bindings build their generated methods on it; Rust programs should prefer the typed
    /// methods.
    pub async fn request(
        &self,
        method: &str,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
        device: Option<&str>,
    ) -> Result<Value> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            Error::BadSpec {
                what: "HTTP method",
                input: method.to_string(),
                reason: "expected GET, POST, PUT, PATCH or DELETE".into(),
            }
        })?;
        if method == Method::GET && segments == ["api", "v1", "ready"] {
            return to_json(&self.ready().await?);
        }
        let what = format!("{method} /{}", segments.join("/"));
        let server = self.server();
        let resp = self
            .send(Req {
                method,
                segments,
                query: query.to_vec(),
                body,
                device,
            })
            .await?;
        let json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| error::transport(&server, &what, &e, Duration::ZERO))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        if !json {
            return Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            peer: server,
            reason: format!("{what}: the answer is not JSON: {e}"),
        })
    }
}
