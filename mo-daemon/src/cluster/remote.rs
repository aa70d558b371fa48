//! Any door, any console (issue 14 item 4; docs/cluster.md "Attaching through any node"): a
//! viewer on node B of a console that node A holds.
//!
//! The owner decides everything a local viewer's console decides: B asks A to attach (subject
//! `mo.rc.A.attach`), A attaches a real [`Session`] for the user (its origin naming node B),
//! so the mode (attach, spy, force, join), the notices, the replay and `who` are the console's
//! own. Commands of that viewer go to `mo.rc.A.s.SID` and A runs them on the session: typed
//! bytes are the user's input in A's log. The console's timeline travels once per node: A
//! publishes every chunk on `mo.tl.DEVICE` while any remote viewer is attached, and each
//! node with viewers subscribes once and fans the chunks out to its viewers through a local
//! broadcast, exactly as the console's hub does for local ones.
//!
//! Core NATS only (no JetStream) and binary framing ([`super::wire`]) on the live path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::StreamExt as _;
use mo_core::console::{
    Console, Mode, Session, TimelineReader, ViewerEvent, ViewerId, ViewerInfo, ViewerRole,
};
use mo_core::link::Signal;
use mo_core::record::{Chunk, RecordKind, now_ns};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use super::wire::{Timeline, answer, read_answer};
use crate::registry::Registry;

/// How long a remote viewer's command may wait for the owner.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a remote viewer tells the owner it is still there (and checks the owner is).
const KEEPALIVE: Duration = Duration::from_secs(2);
/// The owner ends a remote viewer not heard for this long (its node died).
const VIEWER_EXPIRY: Duration = Duration::from_secs(10);
/// Chunks a node holds for its slowest viewer of one remote console (as the console's hub).
const FANOUT_CAPACITY: usize = 1024;

/// The subject prefix of node `node`'s remote-attach service.
fn service(node: &str) -> String {
    format!("mo.rc.{node}")
}

/// The subject of `device`'s timeline.
fn timeline_subject(device: &str) -> String {
    format!("mo.tl.{}", super::directory::key_of(device))
}

/// Names the node holding a device's console (`None`: no live node does).
pub type Holder = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What B asks A to attach.
#[derive(Serialize, Deserialize)]
struct AttachAsk {
    device: String,
    user: String,
    origin: String,
    node: String,
    mode: String,
    replay: Option<usize>,
}

/// What A answers (followed by the replay bytes).
#[derive(Serialize, Deserialize)]
struct Attached {
    sid: u64,
    id: ViewerId,
    role: String,
    message: String,
    /// The console's output offset at the attach: chunks before it are the replay's.
    offset: u64,
}

/// One `who` line on the wire.
#[derive(Serialize, Deserialize)]
struct WhoLine {
    id: ViewerId,
    user: String,
    role: String,
    since_ms: u64,
    origin: String,
}

/// Remote attach on this node: the owner's service and the viewers' side.
pub struct Remote {
    node: String,
    client: async_nats::Client,
    registry: Weak<Registry>,
    /// Which node holds a device's console.
    holder: Holder,
    /// Owner side: the remote viewers attached here, by session id.
    served: Mutex<HashMap<u64, mpsc::Sender<async_nats::Message>>>,
    /// Owner side: the timeline publishers, by device, with their number of remote viewers.
    publishers: Mutex<HashMap<String, (usize, JoinHandle<()>)>>,
    /// Starting a publisher is one at a time: two viewers arriving together share one.
    publishing: tokio::sync::Mutex<()>,
    /// Viewer side: the timelines this node follows, by device.
    feeds: Mutex<HashMap<String, Weak<Feed>>>,
    next_sid: AtomicU64,
}

impl Remote {
    /// Remote attach for node `node` over `client`; `holder` names the node holding a device.
    pub fn new(
        node: &str,
        client: async_nats::Client,
        registry: Weak<Registry>,
        holder: Holder,
    ) -> Arc<Remote> {
        Arc::new(Remote {
            node: node.to_owned(),
            client,
            registry,
            holder,
            served: Mutex::new(HashMap::new()),
            publishers: Mutex::new(HashMap::new()),
            publishing: tokio::sync::Mutex::new(()),
            feeds: Mutex::new(HashMap::new()),
            next_sid: AtomicU64::new(rand::random::<u32>() as u64),
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The node holding `device`'s console, when it is another one.
    pub fn holder_elsewhere(&self, device: &str) -> Option<String> {
        (self.holder)(device).filter(|n| *n != self.node)
    }

    /// Serve the remote viewers of this node's consoles until the task is aborted.
    pub async fn serve(self: Arc<Self>) {
        let subject = format!("{}.>", service(&self.node));
        let mut retry = Duration::from_millis(200);
        loop {
            match self.client.subscribe(subject.clone()).await {
                Ok(mut sub) => {
                    retry = Duration::from_millis(200);
                    while let Some(msg) = sub.next().await {
                        self.dispatch(msg);
                    }
                }
                Err(e) => tracing::warn!("remote attach: cannot subscribe to {subject}: {e}"),
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(Duration::from_secs(5));
        }
    }

    fn dispatch(self: &Arc<Self>, msg: async_nats::Message) {
        let rest = msg
            .subject
            .as_str()
            .strip_prefix(&service(&self.node))
            .unwrap_or_default()
            .to_owned();
        if rest == ".attach" {
            let me = self.clone();
            tokio::spawn(async move {
                let reply = me.attach_here(&msg.payload).await;
                me.respond(&msg, reply).await;
            });
        } else if rest == ".who" {
            let me = self.clone();
            tokio::spawn(async move {
                let device = String::from_utf8_lossy(&msg.payload).into_owned();
                let reply = match me.console_here(&device) {
                    Ok(console) => console
                        .who()
                        .await
                        .map(|w| encode_who(&w))
                        .map_err(|e| e.to_string()),
                    Err(why) => Err(why),
                };
                me.respond(&msg, answer(reply)).await;
            });
        } else if let Some(sid) = rest.strip_prefix(".s.").and_then(|s| s.parse::<u64>().ok()) {
            let tx = self.served.lock().ok().and_then(|m| m.get(&sid).cloned());
            match tx {
                // In order, one session's commands at a time: keystrokes stay in sequence.
                Some(tx) => {
                    if let Err(mpsc::error::TrySendError::Full(msg)) = tx.try_send(msg) {
                        let me = self.clone();
                        tokio::spawn(async move {
                            let busy = Err("the console's owner is busy: try again".into());
                            me.respond(&msg, answer(busy)).await;
                        });
                    }
                }
                None => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let gone = Err(format!("no such viewer on node {}", me.node));
                        me.respond(&msg, answer(gone)).await;
                    });
                }
            }
        }
    }

    async fn respond(&self, msg: &async_nats::Message, body: Bytes) {
        if let Some(reply) = &msg.reply
            && let Err(e) = self.client.publish(reply.clone(), body).await
        {
            tracing::debug!("remote attach: cannot answer: {e}");
        }
    }

    fn console_here(&self, device: &str) -> Result<Console, String> {
        let registry = self.registry.upgrade().ok_or("the daemon is stopping")?;
        registry
            .get(device)
            .and_then(|e| e.console)
            .ok_or_else(|| format!("{device} is not held by node {}", self.node))
    }

    /// Owner side: attach a remote viewer.
    async fn attach_here(self: &Arc<Self>, ask: &[u8]) -> Bytes {
        let ask: AttachAsk = match serde_json::from_slice(ask) {
            Ok(a) => a,
            Err(e) => return answer(Err(format!("bad remote attach request: {e}"))),
        };
        let console = match self.console_here(&ask.device) {
            Ok(c) => c,
            Err(why) => return answer(Err(why)),
        };
        let Some(mode) = Mode::by_name(&ask.mode) else {
            return answer(Err(format!("unknown mode `{}`", ask.mode)));
        };
        // The timeline publisher subscribes before the viewer attaches: nothing after the
        // attach point is missed (the viewer's node drops what came before it).
        if let Err(why) = self.publish_timeline(&ask.device, &console).await {
            return answer(Err(why));
        }
        let origin = format!("node {}: {}", ask.node, ask.origin);
        let session = match console
            .attach_from(&ask.user, &origin, mode, ask.replay)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.unpublish(&ask.device);
                return answer(Err(e.to_string()));
            }
        };
        let sid = self.next_sid.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(256);
        if let Ok(mut m) = self.served.lock() {
            m.insert(sid, tx);
        }
        let mut session = session;
        let attached = Attached {
            sid,
            id: session.id(),
            role: session.role().name().to_owned(),
            message: session.message().to_owned(),
            offset: session.offset(),
        };
        let replay = session.take_replay();
        let head = serde_json::to_vec(&attached).unwrap_or_default();
        let mut body = BytesMut::with_capacity(4 + head.len() + replay.len());
        body.put_u32(head.len() as u32);
        body.put_slice(&head);
        body.put_slice(&replay);
        tracing::info!(device = %ask.device, user = %ask.user, node = %ask.node, "remote viewer attached");
        tokio::spawn(self.clone().serve_session(sid, ask.device, session, rx));
        answer(Ok(body.freeze()))
    }

    /// Owner side: run one remote viewer's commands in order until it leaves, stops being
    /// heard or the console stops.
    async fn serve_session(
        self: Arc<Self>,
        sid: u64,
        device: String,
        mut session: Session,
        mut rx: mpsc::Receiver<async_nats::Message>,
    ) {
        // The deadline moves with every command or keepalive, not with the console's output.
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    heard = tokio::time::Instant::now();
                    let (reply, end) = command(&session, &msg.payload).await;
                    self.respond(&msg, answer(reply)).await;
                    if end {
                        break;
                    }
                }
                () = tokio::time::sleep_until(heard + VIEWER_EXPIRY) => {
                    tracing::info!(device = %device, "remote viewer not heard: ended");
                    break;
                }
                // Only the end matters here; the chunks travel on the timeline subject.
                ev = session.recv() => if ev == ViewerEvent::Closed {
                    break;
                },
            }
        }
        if let Ok(mut m) = self.served.lock() {
            m.remove(&sid);
        }
        drop(session);
        self.unpublish(&device);
    }

    /// Owner side: publish `device`'s timeline (once per console, however many remote viewers).
    async fn publish_timeline(&self, device: &str, console: &Console) -> Result<(), String> {
        let _one = self.publishing.lock().await;
        if let Ok(mut m) = self.publishers.lock()
            && let Some((n, task)) = m.get_mut(device)
            && !task.is_finished()
        {
            *n += 1;
            return Ok(());
        }
        let mut chunks = console.subscribe().await.map_err(|e| e.to_string())?;
        let client = self.client.clone();
        let subject = timeline_subject(device);
        let task = tokio::spawn(async move {
            loop {
                let msg = match chunks.recv().await {
                    Ok(c) => Timeline::Chunk(c),
                    Err(broadcast::error::RecvError::Lagged(n)) => Timeline::Missed(n),
                    Err(broadcast::error::RecvError::Closed) => Timeline::Closed,
                };
                let end = msg == Timeline::Closed;
                if let Err(e) = client.publish(subject.clone(), msg.encode()).await {
                    tracing::debug!("remote attach: cannot publish the timeline: {e}");
                }
                if end {
                    return;
                }
            }
        });
        if let Ok(mut m) = self.publishers.lock()
            && let Some((_, old)) = m.insert(device.to_owned(), (1, task))
        {
            old.abort();
        }
        Ok(())
    }

    fn unpublish(&self, device: &str) {
        if let Ok(mut m) = self.publishers.lock()
            && let Some((n, _)) = m.get_mut(device)
        {
            *n = n.saturating_sub(1);
            if *n == 0
                && let Some((_, task)) = m.remove(device)
            {
                task.abort();
            }
        }
    }

    /// Viewer side: the local fan-out of `device`'s timeline, subscribing once per node.
    async fn feed(&self, device: &str) -> Result<Arc<Feed>, String> {
        if let Some(feed) = self
            .feeds
            .lock()
            .ok()
            .and_then(|m| m.get(device).and_then(Weak::upgrade))
            .filter(|f| !f.task.is_finished())
        {
            return Ok(feed);
        }
        let mut sub = self
            .client
            .subscribe(timeline_subject(device))
            .await
            .map_err(|e| format!("cannot follow {device}'s timeline: {e}"))?;
        let (tx, _) = broadcast::channel(FANOUT_CAPACITY);
        let out = tx.clone();
        let (ended_tx, ended) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                match Timeline::decode(msg.payload) {
                    Some(Timeline::Chunk(c)) => {
                        let _ = out.send(c);
                    }
                    Some(Timeline::Missed(n)) => {
                        let text = format!("{n} chunks of this console were lost on the way");
                        let _ = out.send(notice_chunk(&text));
                    }
                    Some(Timeline::Closed) => break,
                    None => {}
                }
            }
            let _ = ended_tx.send(true);
        });
        let feed = Arc::new(Feed { tx, task, ended });
        if let Ok(mut m) = self.feeds.lock() {
            m.retain(|_, f| f.strong_count() > 0);
            m.insert(device.to_owned(), Arc::downgrade(&feed));
        }
        Ok(feed)
    }

    /// Viewer side: attach `user` to `device`, held by `owner`, as a local session would.
    pub async fn attach(
        self: &Arc<Self>,
        owner: &str,
        device: &str,
        user: &str,
        origin: &str,
        mode: Mode,
        replay: Option<usize>,
    ) -> Result<RemoteSession, String> {
        let feed = self.feed(device).await?;
        let rx = feed.tx.subscribe();
        let ask = AttachAsk {
            device: device.to_owned(),
            user: user.to_owned(),
            origin: origin.to_owned(),
            node: self.node.clone(),
            mode: mode.name().to_owned(),
            replay,
        };
        let ask = serde_json::to_vec(&ask).map_err(|e| e.to_string())?;
        let mut body = self
            .ask(format!("{}.attach", service(owner)), ask.into(), owner)
            .await?;
        if body.len() < 4 {
            return Err("short answer from the console's owner".into());
        }
        let n = body.get_u32() as usize;
        if body.len() < n {
            return Err("short answer from the console's owner".into());
        }
        let head = body.split_to(n);
        let a: Attached = serde_json::from_slice(&head)
            .map_err(|e| format!("bad answer from the console's owner: {e}"))?;
        let role: ViewerRole = a.role.parse().unwrap_or(ViewerRole::Spy);
        let (lost_tx, lost) = watch::channel(None);
        let subject = format!("{}.s.{}", service(owner), a.sid);
        let keepalive = tokio::spawn(keep_alive(
            self.client.clone(),
            subject.clone(),
            owner.to_owned(),
            lost_tx,
        ));
        Ok(RemoteSession {
            remote: self.clone(),
            owner: owner.to_owned(),
            subject,
            user: Arc::from(user),
            id: a.id,
            role: Mutex::new(role),
            message: a.message,
            replay: body,
            reader: TimelineReader::new(rx, a.offset),
            start: a.offset,
            feed,
            lost,
            keepalive,
            ended: false,
        })
    }

    /// `who` of `device`, asked of its owner `owner`.
    pub async fn who(&self, owner: &str, device: &str) -> Result<Vec<ViewerInfo>, String> {
        let body = self
            .ask(
                format!("{}.who", service(owner)),
                Bytes::copy_from_slice(device.as_bytes()),
                owner,
            )
            .await?;
        decode_who(&body)
    }

    async fn ask(&self, subject: String, body: Bytes, owner: &str) -> Result<Bytes, String> {
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, self.client.request(subject, body))
            .await
            .map_err(|_| format!("node {owner} did not answer"))?
            .map_err(|e| unreachable_owner(owner, &e))?;
        read_answer(reply.payload)
    }
}

fn unreachable_owner(owner: &str, e: &async_nats::RequestError) -> String {
    match e.kind() {
        async_nats::RequestErrorKind::NoResponders => format!("node {owner} is not reachable"),
        _ => format!("node {owner} did not answer: {e}"),
    }
}

/// One node's fan-out of one remote console's timeline.
struct Feed {
    tx: broadcast::Sender<Arc<Chunk>>,
    task: JoinHandle<()>,
    /// True once the owner said the console stopped.
    ended: watch::Receiver<bool>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Tell the owner every [`KEEPALIVE`] that the viewer is there; say why when the owner is gone.
async fn keep_alive(
    client: async_nats::Client,
    subject: String,
    owner: String,
    lost: watch::Sender<Option<String>>,
) {
    let mut misses = 0;
    loop {
        tokio::time::sleep(KEEPALIVE).await;
        let ask = client.request(subject.clone(), Bytes::from_static(b"K"));
        let why = match tokio::time::timeout(KEEPALIVE, ask).await {
            Ok(Ok(reply)) => match read_answer(reply.payload) {
                Ok(_) => {
                    misses = 0;
                    continue;
                }
                Err(why) => why,
            },
            Ok(Err(e)) => unreachable_owner(&owner, &e),
            Err(_) => format!("node {owner} did not answer"),
        };
        misses += 1;
        // A no-such-viewer answer is final; silence gets a second chance.
        if misses >= 2 || why.starts_with("no such viewer") {
            let _ = lost.send(Some(why));
            return;
        }
    }
}

/// A notice chunk made on this node (for what the owner cannot say: it is gone).
fn notice_chunk(text: &str) -> Arc<Chunk> {
    Arc::new(Chunk {
        seq: 0,
        time_ns: now_ns(),
        kind: RecordKind::Notice,
        user: Arc::from(""),
        offset: 0,
        bytes: Bytes::copy_from_slice(text.as_bytes()),
    })
}

fn encode_who(who: &[ViewerInfo]) -> Bytes {
    let lines: Vec<WhoLine> = who
        .iter()
        .map(|v| WhoLine {
            id: v.id,
            user: v.user.to_string(),
            role: v.role.name().to_owned(),
            since_ms: v
                .since
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            origin: v.origin.to_string(),
        })
        .collect();
    serde_json::to_vec(&lines).unwrap_or_default().into()
}

fn decode_who(body: &[u8]) -> Result<Vec<ViewerInfo>, String> {
    let lines: Vec<WhoLine> =
        serde_json::from_slice(body).map_err(|e| format!("bad `who` from the owner: {e}"))?;
    Ok(lines
        .into_iter()
        .map(|l| ViewerInfo {
            id: l.id,
            user: Arc::from(l.user),
            role: l.role.parse().unwrap_or(ViewerRole::Spy),
            since: UNIX_EPOCH + Duration::from_millis(l.since_ms),
            origin: Arc::from(l.origin),
        })
        .collect())
}

/// Owner side: run one command of a remote viewer; true when the viewer leaves.
async fn command(session: &Session, ask: &[u8]) -> (Result<Bytes, String>, bool) {
    let Some((&op, body)) = ask.split_first() else {
        return (Err("empty command".into()), false);
    };
    let text = || String::from_utf8_lossy(body).into_owned();
    let done = |r: mo_core::error::Result<String>| r.map(Bytes::from).map_err(|e| e.to_string());
    let reply = match op {
        b'W' => session
            .write(body)
            .await
            .map(|()| Bytes::new())
            .map_err(|e| e.to_string()),
        b'M' => match Mode::by_name(&text()) {
            Some(mode) => match session.set_mode(mode).await {
                Ok(msg) => Ok(Bytes::from(format!("{}\n{msg}", session.role().name()))),
                Err(e) => Err(e.to_string()),
            },
            None => Err(format!("unknown mode `{}`", text())),
        },
        b'B' => done(session.send_break(body.first().copied().unwrap_or(1)).await),
        b'S' => {
            let line = if body.first() == Some(&1) {
                Signal::Rts
            } else {
                Signal::Dtr
            };
            let to = match body.get(1) {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            };
            done(session.set_signal(line, to).await)
        }
        b'Z' if body.len() >= 4 => {
            let cols = u16::from_be_bytes([body[0], body[1]]);
            let rows = u16::from_be_bytes([body[2], body[3]]);
            session
                .window_size(cols, rows)
                .await
                .map(|()| Bytes::new())
                .map_err(|e| e.to_string())
        }
        b'N' => session
            .note(&text())
            .await
            .map(|seq| Bytes::from(seq.to_string()))
            .map_err(|e| e.to_string()),
        b'H' => session
            .who()
            .await
            .map(|w| encode_who(&w))
            .map_err(|e| e.to_string()),
        b'R' => {
            let lines = text().parse().unwrap_or(20);
            session.replay(lines).await.map_err(|e| e.to_string())
        }
        b'C' => session
            .reconnect()
            .await
            .map(|()| Bytes::new())
            .map_err(|e| e.to_string()),
        b'I' => Ok(Bytes::from_static(
            session.console().state().word().as_bytes(),
        )),
        b'K' => Ok(Bytes::new()),
        b'D' => return (Ok(Bytes::new()), true),
        _ => Err("unknown command".into()),
    };
    (reply, false)
}

/// A viewer on this node of a console another node holds: the same calls as a local
/// [`Session`], each answered by the owner.
pub struct RemoteSession {
    remote: Arc<Remote>,
    owner: String,
    subject: String,
    user: Arc<str>,
    id: ViewerId,
    role: Mutex<ViewerRole>,
    message: String,
    replay: Bytes,
    reader: TimelineReader,
    /// The output offset at the attach: the node's fan-out may hold older chunks.
    start: u64,
    feed: Arc<Feed>,
    lost: watch::Receiver<Option<String>>,
    keepalive: JoinHandle<()>,
    ended: bool,
}

impl RemoteSession {
    /// The node holding the console.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// This viewer's id on the owner (as `who` lists it).
    pub fn id(&self) -> ViewerId {
        self.id
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The role granted at attach or at the last mode change.
    pub fn role(&self) -> ViewerRole {
        self.role.lock().map_or(ViewerRole::Spy, |r| *r)
    }

    /// The owner's message for this viewer from connecting.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Take the replay the owner sent (given once).
    pub fn take_replay(&mut self) -> Bytes {
        std::mem::take(&mut self.replay)
    }

    /// The next event of the timeline, as [`Session::recv`]; when the owner stops the console
    /// or cannot be reached, a notice saying so, then [`ViewerEvent::Closed`].
    pub async fn recv(&mut self) -> ViewerEvent {
        if self.ended {
            return ViewerEvent::Closed;
        }
        let mut ended = self.feed.ended.clone();
        let mut lost = self.lost.clone();
        tokio::select! {
            ev = self.next_new() => ev,
            // Whatever the fan-out still holds comes first.
            _ = ended.wait_for(|e| *e) => self.reader.try_recv().unwrap_or(ViewerEvent::Closed),
            why = lost.wait_for(Option::is_some) => {
                let why = why.ok().and_then(|w| w.clone()).unwrap_or_default();
                self.ended = true;
                ViewerEvent::Chunk(notice_chunk(&format!(
                    "{why}: the console's owner is gone"
                )))
            }
        }
    }

    /// The next event of the fan-out that is not from before the attach (those chunks
    /// arrived while the owner attached, and the replay has them).
    async fn next_new(&mut self) -> ViewerEvent {
        loop {
            match self.reader.recv().await {
                ViewerEvent::Chunk(c) if c.offset < self.start => {}
                ev => return ev,
            }
        }
    }

    /// Like [`RemoteSession::recv`] but `None` at once when nothing is waiting.
    pub fn try_recv(&mut self) -> Option<ViewerEvent> {
        if self.ended {
            return Some(ViewerEvent::Closed);
        }
        self.reader.try_recv()
    }

    async fn ask(&self, op: u8, body: &[u8]) -> Result<Bytes, String> {
        let mut ask = BytesMut::with_capacity(1 + body.len());
        ask.put_u8(op);
        ask.put_slice(body);
        self.remote
            .ask(self.subject.clone(), ask.freeze(), &self.owner)
            .await
    }

    /// Type bytes into the console: the owner records them as this user's input.
    pub async fn write(&self, bytes: &[u8]) -> Result<(), String> {
        self.ask(b'W', bytes).await.map(drop)
    }

    /// Change role; the owner decides.
    pub async fn set_mode(&self, mode: Mode) -> Result<String, String> {
        let body = self.ask(b'M', mode.name().as_bytes()).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let (role, msg) = text.split_once('\n').unwrap_or(("spy", text.as_str()));
        if let (Ok(role), Ok(mut slot)) = (role.parse::<ViewerRole>(), self.role.lock()) {
            *slot = role;
        }
        Ok(msg.to_owned())
    }

    /// Send break sequence `number`.
    pub async fn send_break(&self, number: u8) -> Result<String, String> {
        self.text(b'B', &[number]).await
    }

    /// Raise, drop or toggle a modem control line.
    pub async fn set_signal(&self, line: Signal, to: Option<bool>) -> Result<String, String> {
        let line = u8::from(line == Signal::Rts);
        let to = to.map_or(2, u8::from);
        self.text(b'S', &[line, to]).await
    }

    /// Tell the owner this viewer's terminal size.
    pub async fn window_size(&self, cols: u16, rows: u16) -> Result<(), String> {
        let mut b = [0u8; 4];
        b[..2].copy_from_slice(&cols.to_be_bytes());
        b[2..].copy_from_slice(&rows.to_be_bytes());
        self.ask(b'Z', &b).await.map(drop)
    }

    /// Write a note into the console's log (on the owner); returns its sequence number.
    pub async fn note(&self, text: &str) -> Result<u64, String> {
        let seq = self.text(b'N', text.as_bytes()).await?;
        seq.parse()
            .map_err(|_| format!("bad sequence number `{seq}`"))
    }

    /// Everyone connected, on every node.
    pub async fn who(&self) -> Result<Vec<ViewerInfo>, String> {
        decode_who(&self.ask(b'H', b"").await?)
    }

    /// The last `lines` lines of output.
    pub async fn replay(&self, lines: usize) -> Result<Bytes, String> {
        self.ask(b'R', lines.to_string().as_bytes()).await
    }

    /// Reconnect the console's link now.
    pub async fn reconnect(&self) -> Result<(), String> {
        self.ask(b'C', b"").await.map(drop)
    }

    /// The console's link state, in a word.
    pub async fn link_state(&self) -> String {
        self.text(b'I', b"")
            .await
            .unwrap_or_else(|_| "unknown".into())
    }

    async fn text(&self, op: u8, body: &[u8]) -> Result<String, String> {
        let b = self.ask(op, body).await?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
}

impl Drop for RemoteSession {
    fn drop(&mut self) {
        self.keepalive.abort();
        let client = self.remote.client.clone();
        let subject = self.subject.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = client.publish(subject, Bytes::from_static(b"D")).await;
            });
        }
    }
}
