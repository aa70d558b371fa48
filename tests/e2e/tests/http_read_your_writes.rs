//! The HTTP API reads its own writes (issue 24): a device created with `POST /api/v1/devices` is
//! running when the answer comes, so the very next request — a WebSocket attach — reaches its
//! console; a device removed with `DELETE` is gone for the next request. The daemon's store poll
//! (every second) is not what makes this work: every step is the immediately following request,
//! repeated for several devices.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use mo_testsupport::http::{HttpApi, add_token, start_daemon_with_http};
use mo_testsupport::{Error, Result, ensure, run_test};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// Devices created and attached to one after the other: with a poll of one second, a request
/// that only worked by luck would have to land after a poll every time.
const ROUNDS: usize = 5;

async fn call(
    client: &reqwest::Client,
    http: &HttpApi,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = client
        .request(method.clone(), http.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| Error::Check(format!("{method} {path}: {e}")))?;
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .map_err(|e| Error::Check(format!("{method} {path}: reading the body: {e}")))?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// Open the attach WebSocket; the handshake's HTTP status when it is refused.
async fn attach(
    http: &HttpApi,
    device: &str,
    token: &str,
) -> std::result::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    let mut req = http
        .ws_url(&format!("/api/v1/devices/{device}/attach?mode=attach"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            Err(format!("HTTP {}", resp.status().as_u16()))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn a_created_device_is_attachable_in_the_next_request_and_a_removed_one_is_gone() {
    run_test("http-ryw", |w| {
        w.add_user("root1", "root-pw")?;
        let token = add_token(w, "root1", "all")?;
        let http = start_daemon_with_http(w, &[])?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            for round in 0..ROUNDS {
                let name = format!("ryw-{round}");
                let (status, made) = call(
                    &client,
                    &http,
                    reqwest::Method::POST,
                    "/api/v1/devices",
                    &token,
                    Some(json!({"name": name, "url": format!("sim://{name}?boot=fast")})),
                )
                .await?;
                ensure!(status == 201, "POST {name}: {status} {made}");
                ensure!(
                    made["name"] == name.as_str() && made["state"] != "down",
                    "POST {name} answered a device that is not running: {made}"
                );

                // The very next request: attach over the WebSocket and see the console.
                let mut ws = attach(&http, &name, &token)
                    .await
                    .map_err(|e| Error::Check(format!("attach to {name} right after POST: {e}")))?;
                let mut output = String::new();
                let mut hello = None;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                while hello.is_none() || !output.contains("login:") {
                    match tokio::time::timeout_at(deadline, ws.next()).await {
                        Ok(Some(Ok(Message::Text(t)))) => {
                            let frame: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                            if frame["type"] == "hello" {
                                hello = Some(frame);
                            }
                        }
                        Ok(Some(Ok(Message::Binary(b)))) => {
                            output.push_str(&String::from_utf8_lossy(&b));
                        }
                        Ok(Some(Ok(_))) => {}
                        other => {
                            return Err(Error::Check(format!(
                                "{name}: waiting for hello and the login prompt: {other:?}; \
                                 output so far {output:?}"
                            )));
                        }
                    }
                }
                let hello = hello.unwrap_or_default();
                ensure!(
                    hello["device"] == name.as_str() && hello["role"] == "attach",
                    "{name}: {hello}"
                );
                ws.send(Message::Close(None)).await.ok();
                drop(ws);

                // Remove it; the next request no longer finds it, over REST or WebSocket.
                let (status, body) = call(
                    &client,
                    &http,
                    reqwest::Method::DELETE,
                    &format!("/api/v1/devices/{name}"),
                    &token,
                    None,
                )
                .await?;
                ensure!(status == 204, "DELETE {name}: {status} {body}");
                let (status, body) = call(
                    &client,
                    &http,
                    reqwest::Method::GET,
                    &format!("/api/v1/devices/{name}/power"),
                    &token,
                    None,
                )
                .await?;
                ensure!(
                    status == 404 && body["error"]["code"] == "not_found",
                    "GET {name}/power right after DELETE: {status} {body}"
                );
                match attach(&http, &name, &token).await {
                    Err(e) => ensure!(e == "HTTP 404", "attach to removed {name}: {e}"),
                    Ok(_) => {
                        return Err(Error::Check(format!(
                            "attach to {name} right after DELETE succeeded"
                        )));
                    }
                }
            }

            // A value in the `settings` object must be valid even where a top-level field wins
            // over it (Schemathesis found a retain_days of 0 there accepted).
            let (status, answer) = call(
                &client,
                &http,
                reqwest::Method::POST,
                "/api/v1/devices",
                &token,
                Some(json!({"name": "bad-settings", "url": "sim://bad-settings",
                            "retain_days": 1, "settings": {"retain_days": 0}})),
            )
            .await?;
            ensure!(
                status == 400 && answer.to_string().contains("the `settings` object"),
                "POST with settings.retain_days 0: {status} {answer}"
            );
            Ok(())
        })
    });
}
