//! The access check as the daemon runs it at every door: the policy in the store (cached until
//! the store's policy generation moves, so `mo grant add …` applies to the next request) decides,
//! and every decision goes to the audit log through one background writer.
//!
//! The writer is a thread fed by a bounded channel: it commits whatever has queued up in one
//! transaction (one sync to disk for many rows). A caller never drops an entry: when the queue is
//! full it waits for room; [`AuditWriter::flush`] waits until everything appended before it is
//! committed; [`AuditWriter::shutdown`] (also on drop) commits the rest and stops the thread,
//! after which entries are written directly.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use mo_core::policy::{Permission, Policy};

use crate::{AuditEntry, Store};

/// How many audit entries may wait for the writer before a caller waits for room.
pub const AUDIT_QUEUE: usize = 4096;

/// The most entries committed in one transaction.
const BATCH: usize = 512;

/// Told the outcome of every audit write (for metrics): `Ok` or the error's text.
pub type WriteHook = Box<dyn Fn(std::result::Result<(), String>) + Send>;

enum Job {
    Entry(AuditEntry),
    Flush(SyncSender<()>),
}

/// Audit entries written by one background thread, in batches; see the module documentation.
pub struct AuditWriter {
    store: Store,
    hook: Arc<Mutex<WriteHook>>,
    sender: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// Start the writer thread on `store`; `hook` hears the outcome of every write.
    pub fn start(store: Store, hook: WriteHook) -> std::io::Result<AuditWriter> {
        let (sender, receiver) = mpsc::sync_channel(AUDIT_QUEUE);
        let hook = Arc::new(Mutex::new(hook));
        let thread = {
            let (store, hook) = (store.clone(), hook.clone());
            std::thread::Builder::new()
                .name("mo-audit".into())
                .spawn(move || write_loop(&store, &receiver, &hook))?
        };
        Ok(AuditWriter {
            store,
            hook,
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queue `entry`, waiting for room when the queue is full. After [`AuditWriter::shutdown`]
    /// (or if the thread is gone) the entry is written before this returns.
    pub fn append(&self, entry: AuditEntry) {
        let sender = self.sender().clone();
        let entry = match sender {
            Some(sender) => match sender.send(Job::Entry(entry)) {
                Ok(()) => return,
                Err(mpsc::SendError(Job::Entry(entry))) => entry,
                Err(mpsc::SendError(Job::Flush(_))) => return,
            },
            None => entry,
        };
        write(&self.store, std::slice::from_ref(&entry), &self.hook);
    }

    /// Wait until every entry appended before this call is committed.
    pub fn flush(&self) {
        let Some(sender) = self.sender().clone() else {
            return;
        };
        let (ack, acked) = mpsc::sync_channel(1);
        if sender.send(Job::Flush(ack)).is_ok() {
            // An error means the thread is gone; whatever it had is then lost to a panic only.
            let _ = acked.recv();
        }
    }

    /// Commit everything queued and stop the thread; later entries are written directly.
    pub fn shutdown(&self) {
        drop(self.sender().take());
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the audit writer thread panicked");
        }
    }

    fn sender(&self) -> std::sync::MutexGuard<'_, Option<SyncSender<Job>>> {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Take what is queued (up to [`BATCH`] entries) after each wake-up and commit it at once.
fn write_loop(store: &Store, jobs: &Receiver<Job>, hook: &Mutex<WriteHook>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    while let Ok(job) = jobs.recv() {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Entry(entry) => batch.push(entry),
                Job::Flush(ack) => acks.push(ack),
            }
            if batch.len() < BATCH {
                next = jobs.try_recv().ok();
            }
        }
        write(store, &batch, hook);
        batch.clear();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// Write `entries` in one transaction; if that fails, one at a time, so that one entry that
/// cannot be written does not take the others along. Failures are logged with the entry.
fn write(store: &Store, entries: &[AuditEntry], hook: &Mutex<WriteHook>) {
    if entries.is_empty() {
        return;
    }
    let hook = hook.lock().unwrap_or_else(PoisonError::into_inner);
    if store.append_audits(entries).is_ok() {
        hook(Ok(()));
        return;
    }
    for entry in entries {
        match store.append_audit(entry) {
            Ok(_) => hook(Ok(())),
            Err(e) => {
                tracing::error!("cannot write the audit log: {e}; entry: {entry:?}");
                hook(Err(e.to_string()));
            }
        }
    }
}

/// The policy cache and the audit writer: what a door asks before it lets a request through.
pub struct AccessGate {
    store: Store,
    cache: RwLock<Option<(u64, Arc<Policy>)>>,
    audit: AuditWriter,
}

impl AccessGate {
    /// Decisions from `store`'s policy, audited through a writer thread (`hook` hears each
    /// write's outcome).
    pub fn new(store: Store, hook: WriteHook) -> std::io::Result<AccessGate> {
        Ok(AccessGate {
            audit: AuditWriter::start(store.clone(), hook)?,
            store,
            cache: RwLock::new(None),
        })
    }

    /// The policy in force (reloaded when its generation moved in the store). A store that
    /// cannot be read gives an empty policy: everything is denied, nothing is opened by accident.
    pub fn policy(&self) -> Arc<Policy> {
        let generation = self.store.policy_generation().ok();
        if let (Some(generation), Ok(cache)) = (generation, self.cache.read())
            && let Some((cached, policy)) = cache.as_ref()
            && *cached == generation
        {
            return policy.clone();
        }
        match self.store.load_policy() {
            Ok(policy) => {
                let policy = Arc::new(policy);
                if let (Some(generation), Ok(mut cache)) = (generation, self.cache.write()) {
                    *cache = Some((generation, policy.clone()));
                }
                policy
            }
            Err(e) => {
                tracing::error!("cannot load the access policy, denying everything: {e}");
                Arc::new(Policy::new())
            }
        }
    }

    /// Decide whether `user` (coming from `origin`) may take `action` on `device`, and audit
    /// the decision: an allowed one through the background writer (committed within
    /// milliseconds, and at shutdown), a denial committed before this returns. A denial is
    /// returned as the one-line reason to show.
    pub fn check(
        &self,
        user: &str,
        origin: &str,
        action: Permission,
        device: &str,
    ) -> std::result::Result<(), String> {
        let policy = self.policy();
        let decision = policy.decide(user, action, device);
        self.audit(AuditEntry::from_decision(&decision, Some(origin)));
        if decision.allowed() {
            Ok(())
        } else {
            // A denial is rare and is what an auditor looks for: committed before it is answered.
            self.flush();
            Err(format!("denied: {}", decision.reason()))
        }
    }

    /// Decide and audit `action` by `user` over every device: only a grant on the built-in group
    /// `all` counts ([`Policy::decide_global`]). A denial is returned as the reason to show.
    pub fn check_global(
        &self,
        user: &str,
        origin: &str,
        action: Permission,
    ) -> std::result::Result<(), String> {
        let policy = self.policy();
        let decision = policy.decide_global(user, action);
        self.audit(AuditEntry::from_decision(&decision, Some(origin)));
        if decision.allowed() {
            Ok(())
        } else {
            // A denial is rare and is what an auditor looks for: committed before it is answered.
            self.flush();
            Err(format!("denied: {}", decision.reason()))
        }
    }

    /// Append `entry` to the audit log through the writer.
    pub fn audit(&self, entry: AuditEntry) {
        self.audit.append(entry);
    }

    /// Wait until every entry audited so far is committed.
    pub fn flush(&self) {
        self.audit.flush();
    }

    /// Commit what is queued and stop the writer (entries after this are written directly).
    pub fn shutdown(&self) {
        self.audit.shutdown();
    }
}
