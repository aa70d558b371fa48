//! Compressing closed segments with zstd (`NAME.mlog` → `NAME.mlog.zst`).
//!
//! A compressed segment is one zstd frame (with its content checksum) whose decompressed bytes are
//! exactly the plain segment file, so the hash chain, the CRCs and every reader are unaffected
//! (`docs/log-format.md`, "Compressed segments"). Only closed segments are compressed — never the
//! newest of a directory, which the writer may still append to.
//!
//! Compressing is crash-safe: the frame is written to `NAME.mlog.zst.tmp`, synced and checked
//! against the plain file (BLAKE3 of both), renamed to `NAME.mlog.zst` (readers prefer it from
//! then on), and only then is the plain file removed. A crash leaves at worst both forms, or a
//! stray `.tmp` file, which the next pass tidies up.
//!
//! [`LogWriter`](crate::log::LogWriter) does this itself on a background thread after each
//! rotation when [`LogOptions::compress_level`](crate::log::LogOptions) is set.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::log::segment::{
    MAX_DECOMPRESSED_SEGMENT, compressed_path, corrupt, io_err, list_segments,
};

/// Suffix of a compressed segment being written.
const TMP_SUFFIX: &str = ".tmp";

/// Compress every plain segment of the log in `dir` except the newest (which may be live).
/// Returns how many were compressed. Only the log's writer (or whoever holds its
/// [`LogLock`](crate::log::LogLock)) should call this, since retention deletes segments too.
pub fn compress_closed_segments(dir: &Path, level: i32) -> Result<usize> {
    let newest = list_segments(dir)?.last().map_or(0, |s| s.first_seq);
    compress_before(dir, level, newest, &Mutex::new(()))
}

/// Compress the plain segments of `dir` whose first sequence number is below `before_seq`, and
/// remove stray temporary files. `lock` is held while a plain file is swapped for its compressed
/// form, so that retention (which holds it while deleting) never sees half of a swap.
pub(crate) fn compress_before(
    dir: &Path,
    level: i32,
    before_seq: u64,
    lock: &Mutex<()>,
) -> Result<usize> {
    remove_stray_tmp(dir);
    let mut done = 0;
    for seg in list_segments(dir)? {
        if seg.first_seq >= before_seq {
            break;
        }
        if seg.is_compressed() {
            // Both forms after a crash between rename and unlink: the plain one is redundant.
            let _guard = lock.lock();
            let plain = seg.path.with_extension("");
            if plain.exists() {
                std::fs::remove_file(&plain)
                    .map_err(|e| io_err("remove compressed log segment", &plain, e))?;
            }
            continue;
        }
        if compress_segment(&seg.path, level, lock)?.is_some() {
            done += 1;
        }
    }
    Ok(done)
}

/// Compress the closed plain segment `path` into `path.zst` and remove `path`. `Ok(None)` when
/// `path` disappeared meanwhile (retention removed it), or when it is bigger than readers accept
/// compressed ([`MAX_DECOMPRESSED_SEGMENT`]); it then stays plain.
pub(crate) fn compress_segment(
    path: &Path,
    level: i32,
    lock: &Mutex<()>,
) -> Result<Option<PathBuf>> {
    let packed = compressed_path(path);
    let mut tmp_name = packed.clone().into_os_string();
    tmp_name.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp_name);
    let mut plain = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open log segment to compress", path, e)),
    };
    let len = plain
        .metadata()
        .map_err(|e| io_err("stat log segment", path, e))?
        .len();
    if len > MAX_DECOMPRESSED_SEGMENT {
        tracing::debug!(
            path = %path.display(),
            len,
            "log segment too big to keep compressed; left plain"
        );
        return Ok(None);
    }
    let out = File::create(&tmp).map_err(|e| io_err("create compressed segment", &tmp, e))?;
    let werr = |e| io_err("write compressed segment", &tmp, e);
    let mut encoder = zstd::stream::write::Encoder::new(out, level).map_err(werr)?;
    encoder.include_checksum(true).map_err(werr)?;
    encoder.set_pledged_src_size(Some(len)).map_err(werr)?;
    let mut hashing = HashingWriter {
        inner: encoder,
        hash: blake3::Hasher::new(),
    };
    io::copy(&mut plain, &mut hashing).map_err(|e| io_err("compress log segment", path, e))?;
    let plain_hash = hashing.hash.finalize();
    let out = hashing.inner.finish().map_err(werr)?;
    out.sync_all().map_err(werr)?;
    drop(out);

    // Check the frame before anything is removed.
    let check = File::open(&tmp).map_err(|e| io_err("open compressed segment", &tmp, e))?;
    let mut decoder = zstd::stream::read::Decoder::new(check)
        .map_err(|e| io_err("check compressed segment", &tmp, e))?;
    let mut hash = blake3::Hasher::new();
    io::copy(&mut decoder, &mut HashSink(&mut hash))
        .map_err(|e| io_err("check compressed segment", &tmp, e))?;
    if hash.finalize() != plain_hash {
        let _ = std::fs::remove_file(&tmp);
        return Err(corrupt(
            path,
            0,
            "its compressed copy does not decompress to the same bytes (left uncompressed)",
        ));
    }

    let _guard = lock
        .lock()
        .map_err(|_| Error::io("compress log segment", io::Error::other("lock poisoned")))?;
    if !path.exists() {
        let _ = std::fs::remove_file(&tmp);
        return Ok(None);
    }
    std::fs::rename(&tmp, &packed).map_err(|e| io_err("rename compressed segment", &tmp, e))?;
    sync_dir(path);
    std::fs::remove_file(path).map_err(|e| io_err("remove compressed log segment", path, e))?;
    sync_dir(path);
    Ok(Some(packed))
}

/// Make renames and unlinks in the directory of `path` durable (best effort).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Remove `….mlog.zst.tmp` files left by an interrupted compression.
fn remove_stray_tmp(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.ends_with(".mlog.zst.tmp")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

struct HashingWriter<W> {
    inner: W,
    hash: blake3::Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct HashSink<'a>(&'a mut blake3::Hasher);

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A message to a [`Compressor`] thread.
enum Job {
    /// Compress the plain segments below this sequence number.
    Before(u64),
    /// Answer once every earlier job is done.
    Sync(mpsc::Sender<()>),
}

/// The background thread of a writer that compresses closed segments after each rotation.
#[derive(Debug)]
pub(crate) struct Compressor {
    tx: mpsc::Sender<Job>,
    _thread: JoinHandle<()>,
}

impl Compressor {
    /// Start the thread for the log in `dir`. It stops when the compressor is dropped (after the
    /// pass it is in).
    pub(crate) fn start(
        dir: PathBuf,
        level: i32,
        lock: std::sync::Arc<Mutex<()>>,
    ) -> Result<Compressor> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("mo-log-compress".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Sync(done) => {
                            let _ = done.send(());
                        }
                        Job::Before(mut seq) => {
                            // Jobs that queued up meanwhile fold into one pass.
                            let mut syncs = Vec::new();
                            while let Ok(more) = rx.try_recv() {
                                match more {
                                    Job::Before(s) => seq = seq.max(s),
                                    Job::Sync(done) => syncs.push(done),
                                }
                            }
                            if let Err(e) = compress_before(&dir, level, seq, &lock) {
                                tracing::warn!(
                                    dir = %dir.display(),
                                    error = %e,
                                    "cannot compress closed log segments"
                                );
                            }
                            for done in syncs {
                                let _ = done.send(());
                            }
                        }
                    }
                }
            })
            .map_err(|e| Error::io("start the log compression thread", e))?;
        Ok(Compressor {
            tx,
            _thread: thread,
        })
    }

    /// Ask for the plain segments below `before_seq` to be compressed.
    pub(crate) fn compress_before(&self, before_seq: u64) {
        let _ = self.tx.send(Job::Before(before_seq));
    }

    /// Wait until every compression asked for so far is done.
    pub(crate) fn wait(&self) {
        let (done, wait) = mpsc::channel();
        if self.tx.send(Job::Sync(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

#[cfg(test)]
#[path = "compress_tests.rs"]
mod tests;
