//! `mo discover` against real peers, each on its own loopback address standing for a host:
//! ipmi_sim (127.0.0.2), sushy-emulator (.3), snmpd as an APC PDU (.4), ser2net with RFC 2217,
//! telnet and raw ports (.5), inetutils telnetd (.6), sshd (.7), an address answering garbage on
//! TCP and UDP (.8) and one answering nothing (.9). Discovery names each correctly and nothing
//! else, the garbage is reported without failing, `--apply` adds the devices with their power
//! bindings and secrets (power status then answers), and a second run changes nothing.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mo_testsupport::{
    IPMI_PASSWORD, IPMI_USER, IpmiSim, PeerEnd, Ser2net, Snmpd, Sol, Sshd, SshdConfig, Sushy,
    Telnetd, ensure, run_test,
};

fn host(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A TCP and a UDP port on 127.0.0.8 that answer garbage to everyone, until dropped.
struct Garbage {
    tcp_port: u16,
    udp_port: u16,
    stop: Arc<AtomicBool>,
}

impl Garbage {
    fn start() -> std::io::Result<Garbage> {
        let tcp = TcpListener::bind((host(8), 0))?;
        tcp.set_nonblocking(true)?;
        let udp = UdpSocket::bind((host(8), 0))?;
        udp.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let me = Garbage {
            tcp_port: tcp.local_addr()?.port(),
            udp_port: udp.local_addr()?.port(),
            stop: stop.clone(),
        };
        let s = stop.clone();
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match tcp.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.write_all(&[0x00, 0x9c, 0x13, 0x80, 0x01, 0xfe, 0x00, 0x07]);
                        let mut sink = [0u8; 64];
                        let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                        let _ = c.read(&mut sink);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, from)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(b"\x06\x00\xff\x07\x06garbage", from);
                }
            }
        });
        Ok(me)
    }
}

impl Drop for Garbage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The table rows of `address` in discovery output.
/// Whether a table row says `telnet` in its FOUND column: followed by details, or ending the row
/// (a telnet server that sent no text has no details, and the table trims the row's end).
fn found_telnet(row: &str) -> bool {
    row.contains(" telnet ") || row.ends_with(" telnet")
}

fn rows<'a>(stdout: &'a str, address: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(address))
        .collect()
}

#[test]
fn discover_finds_names_and_applies() {
    run_test("discover", |w| {
        let d = w.dir().to_path_buf();
        let bmc = IpmiSim::start_on(&d, "disc", Sol::Pty(PeerEnd::Held), host(2))?;
        let redfish = Sushy::start_with(&d.join("sushy"), |_| {
            "\nSUSHY_EMULATOR_LISTEN_IP = '127.0.0.3'\n".to_string()
        })?;
        let pdu = Snmpd::start_on(&d.join("snmpd"), host(4))?;
        let serial = Ser2net::start_on(&d, "disc", PeerEnd::Held, host(5))?;
        let telnetd = Telnetd::start_on(&d.join("telnetd"), host(6))?;
        let sshd = Sshd::start_with(&d.join("sshd"), SshdConfig::device().on(host(7)))?;
        let garbage = Garbage::start().map_err(|e| mo_testsupport::Error::io("garbage peer", e))?;

        // A device named like PDU outlet 3, so discovery binds that outlet to it.
        w.add_echo_device("outlet-3", &[])?;
        let creds = d.join("creds.toml");
        std::fs::write(
            &creds,
            format!(
                "[[credentials]]\nmatch = \"127.0.0.2-3\"\nuser = \"{IPMI_USER}\"\n\
                 password = \"{IPMI_PASSWORD}\"\n\n\
                 [[credentials]]\nmatch = \"127.0.0.4\"\ncommunities = [\"nobody\", \"private\"]\n"
            ),
        )
        .map_err(|e| mo_testsupport::Error::io("write creds.toml", e))?;

        let ports = format!(
            "ipmi:{},redfish:{},snmp:{},telnet:{},telnet:{},tcp:{},telnet:{},ssh:{},tcp:{},ipmi:{}",
            bmc.port(),
            redfish.port(),
            pdu.port(),
            serial.rfc2217_port(),
            serial.telnet_port(),
            serial.raw_port(),
            telnetd.port(),
            sshd.port(),
            garbage.tcp_port,
            garbage.udp_port,
        );
        let creds_arg = creds.display().to_string();
        let args = [
            "discover",
            "127.0.0.2-127.0.0.9",
            "--ports",
            &ports,
            // Each run lasts this long (the silent raw port, the wrong community); the peers
            // that answer do so in well under a second on loopback.
            "--timeout",
            "5s",
            "--credentials",
            &creds_arg,
        ];
        let out = w.mo_ok(&args, None)?;
        let s = &out.stdout;
        let all = out.combined();

        let r = rows(s, "127.0.0.2");
        ensure!(
            r.len() == 1 && r[0].contains("IPMI BMC") && r[0].contains("IPMI 2.0"),
            "127.0.0.2:\n{all}"
        );
        let r = rows(s, "127.0.0.3");
        ensure!(
            r.len() == 1
                && r[0].contains("Redfish")
                && r[0].contains("node1")
                && r[0].contains("node2"),
            "127.0.0.3:\n{all}"
        );
        let r = rows(s, "127.0.0.4");
        ensure!(
            r.len() == 1
                && r[0].contains("PDU (apc)")
                && r[0].contains("8 outlets")
                && r[0].contains("outlet-8"),
            "127.0.0.4:\n{all}"
        );
        let r = rows(s, "127.0.0.5");
        ensure!(
            r.len() == 3
                && r.iter().any(|l| l.contains("serial port (RFC 2217)"))
                // The telnet port: the device's holder says nothing, so its row may end there.
                && r.iter().any(|l| found_telnet(l))
                // The raw port: silent, or (sharing the device with the others) saying so.
                && r.iter().any(|l| l.contains("unrecognised")),
            "127.0.0.5:\n{all}"
        );
        let r = rows(s, "127.0.0.6");
        ensure!(r.len() == 1 && found_telnet(r[0]), "127.0.0.6:\n{all}");
        let r = rows(s, "127.0.0.7");
        ensure!(
            r.len() == 1 && r[0].contains("SSH") && r[0].contains("SSH-2.0-OpenSSH"),
            "127.0.0.7:\n{all}"
        );
        let r = rows(s, "127.0.0.8");
        ensure!(
            r.len() == 2 && r.iter().all(|l| l.contains("unrecognised")),
            "127.0.0.8:\n{all}"
        );
        ensure!(rows(s, "127.0.0.9").is_empty(), "127.0.0.9:\n{all}");
        ensure!(
            s.contains("probed 8 addresses: 7 answered, 1 silent (127.0.0.9)"),
            "{all}"
        );

        // The plan, in `mo config import`'s format; no secret in clear.
        let bmc_name = format!("bmc-127-0-0-2-{}", bmc.port());
        for line in [
            format!(
                "+ device {bmc_name} (ipmi://{IPMI_USER}@127.0.0.2:{})",
                bmc.port()
            ),
            format!(
                "+ device serial-127-0-0-5-{0} (rfc2217://127.0.0.5:{0})",
                serial.rfc2217_port()
            ),
            format!(
                "+ device telnet-127-0-0-6-{0} (telnet://127.0.0.6:{0})",
                telnetd.port()
            ),
            format!(
                "+ device ssh-127-0-0-7-{0} (ssh://{IPMI_USER}@127.0.0.7:{0})",
                sshd.port()
            ),
            format!(
                "~ device outlet-3: power `[]` → `[\"snmp://127.0.0.4:{}/apc/3\"]`",
                pdu.port()
            ),
            format!("~ secret password of device {bmc_name} (sealed)"),
            "~ secret snmp_auth of device outlet-3 (sealed)".to_string(),
        ] {
            ensure!(s.contains(&line), "missing `{line}`:\n{all}");
        }
        // ipmi_sim's and sushy's password is `password`: only the secret's kind may say it.
        ensure!(
            s.lines()
                .filter(|l| l.contains(IPMI_PASSWORD))
                .all(|l| l.starts_with("~ secret password of device"))
                && !s.contains("private")
                && !s.contains("nobody"),
            "a secret in the output:\n{all}"
        );
        ensure!(s.contains("nothing changed"), "{all}");
        let list = w.mo_ok(&["device", "list"], None)?;
        ensure!(!list.stdout.contains("bmc-"), "{}", list.combined());

        // --apply adds it all in one go; power status answers through the new bindings.
        let mut apply: Vec<&str> = args.to_vec();
        apply.push("--apply");
        let applied = w.mo_ok(&apply, None)?;
        ensure!(
            applied.stdout.contains("applied: "),
            "{}",
            applied.combined()
        );
        let status = w.mo_ok(&["power", "status", &bmc_name, "outlet-3"], None)?;
        ensure!(
            status.stdout.contains(&format!("{bmc_name}: off"))
                && status.stdout.contains("outlet-3: on"),
            "{}",
            status.combined()
        );
        let json = w.mo_ok(&["device", "list", "--json"], None)?;
        ensure!(
            !json.stdout.contains(&format!("\"{IPMI_PASSWORD}\"")),
            "{}",
            json.combined()
        );

        // A second run finds the same and changes nothing; what it writes imports as no change
        // either, and holds the secrets sealed only.
        let found = d.join("found.toml");
        let found_arg = found.display().to_string();
        let mut again_args = apply.clone();
        again_args.extend(["--write", found_arg.as_str()]);
        let again = w.mo_ok(&again_args, None)?;
        ensure!(
            again.stdout.contains("no changes") && !again.stdout.contains("applied: "),
            "{}",
            again.combined()
        );
        let text = std::fs::read_to_string(&found)
            .map_err(|e| mo_testsupport::Error::io("read found.toml", e))?;
        ensure!(
            text.contains(&bmc_name)
                && text.contains("[[secret]]")
                && text
                    .lines()
                    .filter(|l| l.contains(IPMI_PASSWORD))
                    .all(|l| l.trim() == "kind = \"password\"")
                && !text.contains("private"),
            "{text}"
        );
        let import = w.mo_ok(&["config", "import", &found_arg, "--dry-run"], None)?;
        ensure!(
            import.stdout.contains("no changes"),
            "{}",
            import.combined()
        );

        // JSON names every host that answered.
        let mut json_args: Vec<&str> = args.to_vec();
        json_args.push("--json");
        let json = w.mo_ok(&json_args, None)?;
        let value: serde_json::Value = serde_json::from_str(&json.stdout)
            .map_err(|e| mo_testsupport::Error::Check(format!("{e}: {}", json.stdout)))?;
        let hosts = value["hosts"].as_array().map(Vec::len).unwrap_or(0);
        ensure!(hosts == 7, "{hosts} hosts in {}", json.stdout);
        ensure!(
            value["silent"] == serde_json::json!(["127.0.0.9"]),
            "{}",
            json.stdout
        );
        Ok(())
    });
}
