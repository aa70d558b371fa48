//! Resume points of agent ports: the last sequence number the daemon passed on, per agent port
//! and spool epoch, kept in memory and written to the store (all pending ones in one transaction
//! every [`PERSIST_EVERY`], and once more when the daemon stops), so that a restarted daemon
//! tells a reconnecting agent where to go on. And the times of the bytes in a console's pipe,
//! which the console actor asks for to record output with the time the agent read it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use mo_store::ResumePoint;

use super::{Agents, PortKey};

/// How often resume points are written to the store, and how often a port channel acknowledges
/// what was written.
pub(super) const PERSIST_EVERY: Duration = Duration::from_millis(200);

/// Pieces read by the agent within this long of a piece's first byte are recorded together.
const MERGE_NS: u64 = 1_000_000;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Agents {
    /// Where `key` resumes in `epoch`: the last sequence number passed on, from this run or
    /// (after a daemon restart) from the store.
    pub(super) async fn resume_point(&self, key: &PortKey, epoch: u64) -> Option<u64> {
        let known = lock(&self.resume).get(key).copied();
        let known = match known {
            Some(k) => Some(k),
            None => {
                let store = self.store.clone();
                let (agent, port) = key.clone();
                match tokio::task::spawn_blocking(move || store.agent_resume(&agent, &port)).await {
                    Ok(Ok(k)) => k,
                    Ok(Err(e)) => {
                        tracing::error!(agent = %key.0, port = %key.1, "cannot read the resume point: {e}");
                        None
                    }
                    Err(e) => {
                        tracing::error!("resume point lookup failed: {e}");
                        None
                    }
                }
            }
        };
        known.and_then(|(e, seq)| (e == epoch).then_some(seq))
    }

    /// Record that `seq` of `key` in `epoch` was passed on to the port's consoles.
    pub(super) fn passed_on(self: &Arc<Self>, key: &PortKey, epoch: u64, seq: u64) {
        lock(&self.resume).insert(key.clone(), (epoch, seq));
        lock(&self.pending).insert(key.clone(), (epoch, seq));
        if !self.persisting.swap(true, Ordering::SeqCst) {
            let weak = Arc::downgrade(self);
            tokio::spawn(persist_loop(weak));
        }
    }

    /// The resume point of `key` written to the store, if in `epoch`.
    pub(super) fn persisted(&self, key: &PortKey, epoch: u64) -> Option<u64> {
        lock(&self.persisted)
            .get(key)
            .and_then(|&(e, seq)| (e == epoch).then_some(seq))
    }

    /// Write the pending resume points to the store (in one transaction). The daemon calls it
    /// once more when it stops, after its consoles.
    pub async fn persist_resume_points(&self) {
        let batch: Vec<(PortKey, (u64, u64))> = lock(&self.pending).drain().collect();
        if batch.is_empty() {
            return;
        }
        let points: Vec<ResumePoint> = batch
            .iter()
            .map(|((agent, port), (epoch, seq))| ResumePoint {
                agent: agent.clone(),
                port: port.clone(),
                epoch: *epoch,
                seq: *seq,
            })
            .collect();
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || store.set_agent_resumes(&points)).await;
        match written {
            Ok(Ok(())) => {
                let mut persisted = lock(&self.persisted);
                for (key, point) in batch {
                    persisted.insert(key, point);
                }
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                    Ok(Ok(())) => String::new(),
                };
                tracing::error!("cannot record agent resume points (retrying): {why}");
                let mut pending = lock(&self.pending);
                for (key, point) in batch {
                    pending.entry(key).or_insert(point);
                }
            }
        }
    }
}

/// Write pending resume points every [`PERSIST_EVERY`] for as long as the agents live.
async fn persist_loop(agents: Weak<Agents>) {
    loop {
        tokio::time::sleep(PERSIST_EVERY).await;
        let Some(agents) = agents.upgrade() else {
            return;
        };
        agents.persist_resume_points().await;
    }
}

/// The bytes in a console's pipe and when the agent read them, in order: `(length, time_ns)`.
#[derive(Debug, Default)]
pub(super) struct OriginTimes(Mutex<VecDeque<(usize, u64)>>);

impl OriginTimes {
    /// `len` bytes read by the agent at `time_ns` go into the pipe.
    pub(super) fn push(&self, len: usize, time_ns: i64) {
        if len == 0 {
            return;
        }
        let time = u64::try_from(time_ns).unwrap_or(0);
        lock(&self.0).push_back((len, time));
    }

    /// The times of the next `n` bytes out of the pipe; pieces read within [`MERGE_NS`] of the
    /// first of a run are merged.
    pub(super) fn take(&self, n: usize) -> Vec<(usize, u64)> {
        let mut q = lock(&self.0);
        let mut left = n;
        let mut out: Vec<(usize, u64)> = Vec::new();
        while left > 0 {
            let Some(front) = q.front_mut() else {
                break;
            };
            let take = front.0.min(left);
            match out.last_mut() {
                Some(last) if front.1.abs_diff(last.1) < MERGE_NS => last.0 += take,
                _ => out.push((take, front.1)),
            }
            front.0 -= take;
            left -= take;
            if front.0 == 0 {
                q.pop_front();
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn times_follow_the_bytes_and_close_pieces_merge() {
        let t = OriginTimes::default();
        t.push(3, 1_000_000_000);
        t.push(2, 1_000_000_500);
        t.push(4, 5_000_000_000);
        t.push(0, 7);
        assert_eq!(t.take(4), vec![(4, 1_000_000_000)]);
        assert_eq!(t.take(10), vec![(1, 1_000_000_500), (4, 5_000_000_000)]);
        assert!(t.take(3).is_empty());
        t.push(1, -5);
        assert_eq!(t.take(1), vec![(1, 0)]);
    }
}
