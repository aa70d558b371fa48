//! `POST /api/v1/discover` and `mo discover --server`: the daemon probes from its host (ipmi_sim
//! on 127.0.3.2 stands for a BMC, 127.0.3.3 answers nothing) and answers with the plan; a
//! viewer is refused, a range over 4096 addresses is a 400 naming the limit, and an admin's
//! `--apply` adds the BMC, whose console the running daemon then serves.

use std::time::{Duration, Instant};

use mo_testsupport::http::{add_token, start_daemon_with_http};
use mo_testsupport::{
    IPMI_PASSWORD, IPMI_USER, IpmiSim, PeerEnd, Sol, ensure, lan_host, run_test, write_credentials,
};

#[test]
fn discover_through_the_api() {
    run_test("discover-api", |w| {
        let d = w.dir().to_path_buf();
        let bmc = IpmiSim::start_on(&d, "api", Sol::Pty(PeerEnd::Held), lan_host(3, 2))?;
        w.add_user("alice", "alice-pw")?;
        w.add_user_with_role("vera", "vera-pw", Some(("viewer", "all")))?;
        let alice = add_token(w, "alice", "all")?;
        let vera = add_token(w, "vera", "all")?;
        let api = start_daemon_with_http(w, &[])?;
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| mo_testsupport::Error::Check(e.to_string()))?;
        let post = |token: &str, body: serde_json::Value| {
            let response = http
                .post(api.url("/api/v1/discover"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .map_err(|e| mo_testsupport::Error::Check(format!("POST /api/v1/discover: {e}")))?;
            let status = response.status().as_u16();
            let text = response.text().unwrap_or_default();
            Ok::<_, mo_testsupport::Error>((status, text))
        };
        let ports = format!("ipmi:{}", bmc.port());
        let body = serde_json::json!({
            "targets": ["127.0.3.2-127.0.3.3"],
            "ports": ports,
            "timeout": "10s",
            "parallel": 8,
            "credentials": [{"match": "127.0.3.2", "user": IPMI_USER, "password": IPMI_PASSWORD}],
        });

        let (status, text) = post(&vera, body.clone())?;
        ensure!(status == 403, "a viewer discovered: {status} {text}");
        let mut apply = body.clone();
        apply["apply"] = serde_json::json!(true);
        let (status, text) = post(&vera, apply)?;
        ensure!(status == 403, "a viewer applied: {status} {text}");

        let (status, text) = post(
            &alice,
            serde_json::json!({"targets": ["10.0.0.0/19"], "ports": "ipmi"}),
        )?;
        ensure!(
            status == 400 && text.contains("8192 addresses") && text.contains("4096"),
            "{status} {text}"
        );

        let bmc_name = format!("bmc-127-0-3-2-{}", bmc.port());
        let (status, text) = post(&alice, body)?;
        let report: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| mo_testsupport::Error::Check(format!("{e}: {status} {text}")))?;
        let plan = report["plan"].to_string();
        ensure!(
            status == 200
                && plan.contains(&format!(
                    "+ device {bmc_name} (ipmi://{IPMI_USER}@127.0.3.2:{})",
                    bmc.port()
                ))
                && report["silent"] == serde_json::json!(["127.0.3.3"])
                && report["applied"] == serde_json::json!(false)
                && report["hosts"][0]["found"][0]["kind"] == "ipmi"
                // Only the secret's kind may say `password`, never the value.
                && !text.contains(&format!("\"{IPMI_PASSWORD}\"")),
            "{status} {text}"
        );

        // The CLI through the daemon, with --apply: the daemon adds the BMC and serves it.
        let creds = write_credentials(
            &d.join("creds.toml"),
            &[(
                "127.0.3.2",
                &format!("user = \"{IPMI_USER}\"\npassword = \"{IPMI_PASSWORD}\""),
            )],
        )?;
        let creds = creds.display().to_string();
        let server = ["--server", api.base.as_str(), "--token", alice.as_str()];
        let mut args: Vec<&str> = server.to_vec();
        args.extend([
            "discover",
            "127.0.3.2-127.0.3.3",
            "--ports",
            &ports,
            "--timeout",
            "10s",
            "--credentials",
            &creds,
        ]);
        let planned = w.mo_ok(&args, None)?;
        ensure!(
            planned.stdout.contains("IPMI BMC")
                && planned.stdout.contains("1 answered, 1 silent (127.0.3.3)")
                && planned.stdout.contains(&format!("+ device {bmc_name}"))
                && planned.stdout.contains("nothing changed"),
            "{}",
            planned.combined()
        );
        args.push("--apply");
        let applied = w.mo_ok(&args, None)?;
        ensure!(
            applied.stdout.contains("applied on"),
            "{}",
            applied.combined()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut list: Vec<&str> = server.to_vec();
            list.extend(["power", "status", bmc_name.as_str()]);
            let status = w.mo(&list, None)?;
            let off = status
                .stdout
                .lines()
                .any(|l| l.starts_with(&format!("{bmc_name}:")) && l.trim_end().ends_with(" off"));
            if status.success() && off {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the daemon does not serve {bmc_name}: {}",
                status.combined()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let again = w.mo_ok(&args, None)?;
        ensure!(
            again.stdout.contains("no changes") && !again.stdout.contains("applied on"),
            "{}",
            again.combined()
        );
        Ok(())
    });
}
