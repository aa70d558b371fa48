//! The `telnet` and `tcp` drivers against real peers on 127.0.0.1: inetutils telnetd running a
//! fake console (PEERS.md), a telnet echo server built on mo's own codec for bulk data, and a
//! raw TCP echo listener.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/net.rs"]
mod net;
mod peers;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use mo_core::Error;
use mo_core::link::{Connector, ControlOp, Link};
use mo_drivers::telnet::codec::{
    BINARY, DO, DONT, ECHO, IAC, NAWS, SB, SE, SGA, TelnetCodec, WILL, WONT,
};
use mo_drivers::{DriverOptions, TcpConnector, TelnetConnector, connector_for};
use net::{PROMPT, Telnetd};
use peers::{STEP, read_until};
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

/// Connect to a fresh telnetd and wait for the login prompt; returns everything read so far.
async fn telnetd_link(dir: &std::path::Path) -> Result<(Telnetd, Link, Vec<u8>)> {
    let telnetd = Telnetd::start(dir)?;
    let connector = connector_for(&telnetd.address(), &DriverOptions::default())?;
    let mut link = timeout(STEP, connector.connect()).await??;
    let seen = read_until(&mut link.reader, PROMPT.as_bytes()).await?;
    Ok((telnetd, link, seen))
}

fn clean(bytes: &[u8]) -> bool {
    !bytes.contains(&IAC) && !bytes.contains(&0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telnetd_prompt_arrives_clean_and_typed_text_comes_back() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut telnetd, mut link, seen) = telnetd_link(dir.path()).await?;
    // telnetd negotiates many options first; none of it may reach the console.
    ensure!(seen == PROMPT.as_bytes(), "before the prompt: {seen:?}");
    link.writer.write_all(b"hello there\r").await?;
    let seen = read_until(
        &mut link.reader,
        b"got: hello there\r\nfake-console login: ",
    )
    .await?;
    ensure!(clean(&seen), "IAC or NUL in {seen:?}");
    // The pty echoes the line, then the script answers it and prompts again.
    ensure!(
        seen == b"hello there\r\ngot: hello there\r\nfake-console login: ",
        "unexpected output: {:?}",
        String::from_utf8_lossy(&seen)
    );
    Ok(telnetd.stop()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telnetd_window_size_reaches_the_terminal() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut telnetd, mut link, _) = telnetd_link(dir.path()).await?;
    for (cols, rows) in [(132u16, 43u16), (100, 30)] {
        link.control
            .control(ControlOp::WindowSize { cols, rows })
            .await?;
        // telnetd agreed to NAWS before the prompt, and control frames go out before data
        // written after them: the size reaches the pty before the command.
        link.writer.write_all(b"size\r").await?;
        let expect = format!("size: {rows} {cols}\r\n");
        let seen = read_until(&mut link.reader, expect.as_bytes()).await?;
        ensure!(clean(&seen), "IAC or NUL in {seen:?}");
    }
    Ok(telnetd.stop()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telnetd_break_reaches_the_device_and_the_session_goes_on() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut telnetd, mut link, _) = telnetd_link(dir.path()).await?;
    for round in 0..2 {
        link.control
            .control(ControlOp::Break {
                duration: Duration::from_millis(250),
            })
            .await?;
        // telnetd turns IAC BRK into the quit character and follows it with an urgent IAC DM;
        // the script traps the signal.
        let seen = read_until(&mut link.reader, b"[break]").await?;
        ensure!(
            clean(&seen) && !seen.contains(&0xF2),
            "protocol bytes in {seen:?}"
        );
        let line = format!("still here {round}\r");
        link.writer.write_all(line.as_bytes()).await?;
        read_until(
            &mut link.reader,
            format!("got: still here {round}").as_bytes(),
        )
        .await?;
    }
    Ok(telnetd.stop()?)
}

/// A telnet echo server on mo's own codec: sends `hello` raw, then echoes the decoded data
/// re-encoded. The first `negotiation_len` bytes it receives (the client's answers, sent before
/// any data) go to `answers` raw.
async fn codec_echo_server(
    listener: TcpListener,
    hello: Vec<u8>,
    binary: bool,
    negotiation_len: usize,
    answers: tokio::sync::oneshot::Sender<Vec<u8>>,
) -> Result<()> {
    let (mut stream, _) = listener.accept().await?;
    stream.set_nodelay(true)?;
    stream.write_all(&hello).await?;
    // What the client answers, read raw, before any data flows.
    let mut negotiation = vec![0u8; negotiation_len];
    stream.read_exact(&mut negotiation).await?;
    let _ = answers.send(negotiation);
    let mut codec = TelnetCodec::new();
    if binary {
        // The server's own view of the options it asked for; its replies are not sent.
        codec.feed(
            &[IAC, DO, BINARY, IAC, WILL, BINARY],
            &mut Vec::new(),
            &mut Vec::new(),
        );
    }
    let mut buf = vec![0u8; 16 * 1024];
    let (mut data, mut ignored, mut wire) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        data.clear();
        wire.clear();
        codec.feed(&buf[..n], &mut data, &mut ignored);
        codec.encode_data(&data, &mut wire);
        stream.write_all(&wire).await?;
    }
}

/// The telnet commands in `bytes` (3-byte negotiations and whole subnegotiations), sorted.
fn commands(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = if rest.starts_with(&[IAC, SB]) {
            rest.windows(2)
                .position(|w| w == [IAC, SE])
                .map_or(rest.len(), |at| at + 2)
        } else {
            rest.len().min(3)
        };
        let (command, tail) = rest.split_at(len);
        found.push(command.to_vec());
        rest = tail;
    }
    found.sort();
    found
}

/// 1 MiB of random bytes (every `0xFF`, `CR` and `NUL` included) goes out and comes back
/// through the telnet link unchanged, in NVT and in binary mode; the reader's negotiation
/// answers and the window size reach the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_data_survives_escaping_both_ways() -> Result<()> {
    for binary in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mut hello = vec![IAC, WILL, ECHO, IAC, DO, NAWS, IAC, DO, 24, IAC, WILL, SGA];
        // The client's answers (in some order); its greeting DO SGA is answered by our WILL SGA.
        let mut expected = vec![IAC, DO, SGA, IAC, DO, ECHO, IAC, WILL, NAWS, IAC, WONT, 24];
        if binary {
            hello.extend([IAC, WILL, BINARY, IAC, DO, BINARY]);
            expected.extend([IAC, DO, BINARY, IAC, WILL, BINARY]);
        }
        let naws = [IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE];
        expected.extend(naws);
        let (answers_tx, answers) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(codec_echo_server(
            listener,
            hello.clone(),
            binary,
            expected.len(),
            answers_tx,
        ));

        let connector = TelnetConnector::new("127.0.0.1", port);
        let mut link = timeout(STEP, connector.connect())
            .await
            .context("connect")??;
        // Before or after the server's DO NAWS is read: either way the size is sent once.
        link.control
            .control(ControlOp::WindowSize { cols: 80, rows: 24 })
            .await?;
        // No data before the negotiation is done, so the server can read the answers raw.
        let negotiation = timeout(STEP, answers)
            .await
            .context("the client did not answer the negotiation")??;
        ensure!(
            commands(&negotiation) == commands(&expected),
            "binary {binary}: server got {negotiation:?}, expected {expected:?} in any order"
        );
        ensure!(
            !negotiation.contains(&DONT),
            "refused something it should accept"
        );

        let mut out = vec![0u8; 1 << 20];
        rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut out);
        out.extend([b'\r', 0, 0xFF, b'\r', b'\n', b'\r']);
        let Link { reader, writer, .. } = &mut link;
        let writes = async {
            writer.write_all(&out).await?;
            writer.flush().await
        };
        let reads = async {
            let mut got = vec![0u8; out.len()];
            reader.read_exact(&mut got).await.map(|_| got)
        };
        let (w, r) = timeout(Duration::from_secs(60), async {
            tokio::join!(writes, reads)
        })
        .await
        .context("1 MiB through the telnet echo did not finish")?;
        w?;
        let got = r?;
        ensure!(got == out, "binary {binary}: the echo differs");
        drop(link);
        timeout(STEP, server)
            .await
            .context("the server did not see the link close")???;
    }
    Ok(())
}

/// The same bytes over `tcp://` pass untouched: no escaping, no negotiation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_passes_bytes_untouched_to_an_echo_listener() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let echo = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let (mut rx, mut tx) = stream.into_split();
        tokio::io::copy(&mut rx, &mut tx).await?;
        anyhow::Ok(())
    });
    let connector = TcpConnector::new("127.0.0.1", port);
    let mut link = timeout(STEP, connector.connect()).await??;
    let data = [IAC, DO, ECHO, b'\r', 0, IAC, IAC, b'x'];
    link.writer.write_all(&data).await?;
    let mut got = [0u8; 8];
    timeout(STEP, link.reader.read_exact(&mut got)).await??;
    ensure!(got == data, "tcp changed the bytes: {got:?}");
    let err = link
        .control
        .control(ControlOp::Break {
            duration: Duration::from_millis(10),
        })
        .await
        .unwrap_err();
    ensure!(matches!(err, Error::Unsupported { .. }), "{err}");
    drop(link);
    timeout(STEP, echo).await???;
    Ok(())
}

/// Connecting where nothing listens fails with an error naming the address.
#[tokio::test]
async fn connect_errors_name_the_address() -> Result<()> {
    let port = mo_testsupport::free_port()?;
    for address in [
        format!("telnet://127.0.0.1:{port}"),
        format!("tcp://127.0.0.1:{port}"),
    ] {
        let connector = connector_for(&address, &DriverOptions::default())?;
        let err = connector.connect().await.unwrap_err();
        let text = err.to_string();
        ensure!(matches!(err, Error::Connect { .. }), "{text}");
        ensure!(text.contains(&address), "{text}");
    }
    // The server closing at once: the reader reports the end, nothing panics.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let closer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        stream.write_all(&[IAC, SB, 24]).await?;
        anyhow::Ok(())
    });
    let mut link = TelnetConnector::new("127.0.0.1", port).connect().await?;
    let mut buf = [0u8; 16];
    let n = timeout(STEP, link.reader.read(&mut buf)).await??;
    ensure!(
        n == 0,
        "read {n} bytes from a server that sent only a cut command"
    );
    closer.await??;
    Ok(())
}
