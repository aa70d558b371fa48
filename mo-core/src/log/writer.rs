//! The record log writer: appends chunks to the live segment of a device directory, one write
//! system call per record, rotating and pruning segments.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
#[cfg(feature = "compress")]
use crate::log::compress::Compressor;
use crate::log::format::{self, Chain, GENESIS_CHAIN, RecordFields, SegmentHeader};
use crate::log::retention::{Pruned, Retention, execute_plan, plan_retention};
use crate::log::segment::{
    self, SegmentFile, corrupt, io_err, list_segments, scan_end, segment_file_name,
};
use crate::record::{Chunk, RecordSink};

/// The scratch buffer is shrunk back after a record made it grow past this.
const SCRATCH_KEEP: usize = 256 * 1024;

/// How a [`LogWriter`] rotates and prunes segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Start a new segment before one would grow past this many bytes (default 64 MiB).
    pub segment_max_bytes: u64,
    /// Start a new segment once the live one's first record is this old (default 24 h).
    pub segment_max_age: Duration,
    /// Delete the oldest closed segments while all segments together exceed this many bytes.
    pub retain_max_bytes: Option<u64>,
    /// Delete closed segments whose last record is older than this.
    pub retain_max_age: Option<Duration>,
    /// Compress closed segments with zstd at this level (1–22; 3 is a good default) on a
    /// background thread after each rotation. `None` (the default) keeps them plain. Readers read
    /// both forms either way. Needs the `compress` feature (a default one): without it,
    /// [`LogWriter::open`] refuses a level.
    pub compress_level: Option<i32>,
    /// When written records are forced to stable storage (default: at most one second after
    /// they were written). Rotation and [`LogWriter::sync`] always sync; notes, marks, power
    /// and gap records are synced before `append` returns unless this is [`Fsync::Never`].
    pub fsync: Fsync,
}

/// When a [`LogWriter`] forces what it wrote to stable storage (`fdatasync`).
///
/// Every record reaches the kernel in one `writev` whatever the policy, so a killed daemon loses
/// nothing; the policy decides what a crash of the whole machine or a power cut may lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fsync {
    /// Never sync on a timer; only on rotation, shutdown and explicit [`LogWriter::sync`].
    Never,
    /// Sync after every record.
    Always,
    /// Sync at most this long after a record was written.
    Interval(Duration),
}

impl Default for Fsync {
    fn default() -> Self {
        Fsync::Interval(Duration::from_secs(1))
    }
}

impl std::fmt::Display for Fsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fsync::Never => f.write_str("never"),
            Fsync::Always => f.write_str("always"),
            Fsync::Interval(d) => write!(f, "interval={}", humantime::format_duration(*d)),
        }
    }
}

impl std::str::FromStr for Fsync {
    type Err = Error;

    /// `never`, `always` or `interval=DURATION` (`interval=1s`, `interval=250ms`).
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadSpec {
            what: "fsync policy",
            input: s.to_string(),
            reason,
        };
        match s.trim() {
            "never" => Ok(Fsync::Never),
            "always" => Ok(Fsync::Always),
            other => {
                let Some(d) = other.strip_prefix("interval=") else {
                    return Err(bad(
                        "expected `never`, `always` or `interval=DURATION` (e.g. interval=1s)"
                            .into(),
                    ));
                };
                let d = humantime::parse_duration(d.trim())
                    .map_err(|e| bad(format!("bad duration `{d}`: {e}")))?;
                if d.is_zero() {
                    return Err(bad("an interval of zero is `always`".into()));
                }
                Ok(Fsync::Interval(d))
            }
        }
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_max_bytes: 64 * 1024 * 1024,
            segment_max_age: Duration::from_secs(24 * 60 * 60),
            retain_max_bytes: None,
            retain_max_age: None,
            compress_level: None,
            fsync: Fsync::default(),
        }
    }
}

/// What [`LogWriter::open`] found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The live segment the writer continues, if there is one yet.
    pub segment: Option<PathBuf>,
    /// Sequence number of the next record.
    pub next_seq: u64,
    /// Whether a torn final record (or a torn segment header) was found and dropped.
    pub torn: bool,
    /// Bytes dropped from the end of the live segment.
    pub dropped_bytes: u64,
    /// Why the dropped bytes were not a valid record.
    pub reason: Option<String>,
}

#[derive(Debug)]
struct LiveSegment {
    /// Open while the console is active; closed by [`LogWriter::flush`] so idle writers hold no
    /// file descriptor.
    file: Option<File>,
    path: PathBuf,
    created_ns: u64,
    len: u64,
    records: u64,
}

/// Appends records to a device directory. Implements [`RecordSink`].
///
/// Each record goes to the kernel in one `writev` and nothing is buffered in the process, so a
/// killed process loses nothing the page cache holds; [`LogWriter::sync`] forces it to disk.
/// Sequence number `u64::MAX` is never written (no record could follow it): appending it fails.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    opts: LogOptions,
    live: Option<LiveSegment>,
    next_seq: u64,
    chain: Chain,
    scratch: Vec<u8>,
    /// A failed write left bytes past `live.len` that must be cut before the next append.
    dirty: bool,
    /// Compresses closed segments, when [`LogOptions::compress_level`] is set.
    #[cfg(feature = "compress")]
    compressor: Option<Compressor>,
    /// Held by retention while deleting and by the compressor while swapping a segment's form.
    files_lock: Arc<Mutex<()>>,
    /// When the oldest record not yet made durable was written.
    unsynced_since: Option<std::time::Instant>,
    /// A segment was created since the last sync: the directory is synced with the next one.
    dir_unsynced: bool,
}

impl LogWriter {
    /// Open (creating it if needed) the log in `dir` and recover from a crash: a torn final record
    /// of the live segment is cut off, nothing before it is touched. Damage anywhere else in the
    /// live segment is an [`Error::LogCorrupt`] (run verify).
    pub fn open(dir: &Path, opts: LogOptions) -> Result<(LogWriter, Recovery)> {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create log directory", dir, e))?;
        let mut segments = list_segments(dir)?;
        let mut writer = LogWriter {
            dir: dir.to_path_buf(),
            opts,
            live: None,
            next_seq: 1,
            chain: GENESIS_CHAIN,
            scratch: Vec::new(),
            dirty: false,
            #[cfg(feature = "compress")]
            compressor: None,
            files_lock: Arc::new(Mutex::new(())),
            unsynced_since: None,
            dir_unsynced: false,
        };
        let mut recovery = Recovery {
            segment: None,
            next_seq: 1,
            torn: false,
            dropped_bytes: 0,
            reason: None,
        };
        while let Some(last) = segments.pop() {
            if last.is_compressed() {
                // A compressed newest segment is closed: the next record starts a new segment.
                if let Some(end) = scan_end(&last.path, false)? {
                    writer.next_seq = end.next_seq;
                    writer.chain = end.chain;
                    break;
                }
                return Err(corrupt(&last.path, 0, "segment header cut short"));
            }
            if let Some(end) = scan_end(&last.path, true)? {
                if segment_version(&last.path)? < format::FORMAT_VERSION {
                    // Written by an older format: it may not hold this version's record kinds.
                    // Leave it closed (cutting a torn record first); the next record starts a
                    // new segment of this version.
                    writer.continue_segment(&last, end, &mut recovery)?;
                    writer.live = None;
                    break;
                }
                writer.continue_segment(&last, end, &mut recovery)?;
                break;
            }
            // Torn header: the writer stopped while creating this segment, so it holds no record.
            // Remove it and continue the segment before it (the next append rotates if due).
            let len = std::fs::metadata(&last.path)
                .map_err(|e| io_err("stat log segment", &last.path, e))?
                .len();
            std::fs::remove_file(&last.path)
                .map_err(|e| io_err("remove torn log segment", &last.path, e))?;
            recovery.torn = true;
            recovery.dropped_bytes += len;
            recovery.reason = Some(format!("torn segment header in {}", last.name()));
            // With no segment before it, older ones were pruned: seq continues, the chain restarts.
            writer.next_seq = last.first_seq;
        }
        recovery.next_seq = writer.next_seq;
        writer.retain_logged(crate::record::now_ns());
        #[cfg(not(feature = "compress"))]
        if writer.opts.compress_level.is_some() {
            return Err(Error::Unsupported {
                operation: "compressing log segments",
                what: "this build of mo-core (Cargo feature `compress` is off)".into(),
            });
        }
        #[cfg(feature = "compress")]
        if let Some(level) = writer.opts.compress_level {
            let compressor =
                Compressor::start(writer.dir.clone(), level, writer.files_lock.clone())?;
            // Catch up on segments closed before (a crash, or compression newly turned on).
            let live_first = writer
                .live
                .as_ref()
                .and_then(|l| segment::parse_segment_file_name(&file_name(&l.path)))
                .unwrap_or(writer.next_seq);
            compressor.compress_before(live_first);
            writer.compressor = Some(compressor);
        }
        Ok((writer, recovery))
    }

    fn continue_segment(
        &mut self,
        seg: &SegmentFile,
        end: segment::SegmentEnd,
        recovery: &mut Recovery,
    ) -> Result<()> {
        if end.header.first_seq != seg.first_seq {
            return Err(corrupt(
                &seg.path,
                16,
                format!(
                    "header says first seq {} but the file name says {}",
                    end.header.first_seq, seg.first_seq
                ),
            ));
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&seg.path)
            .map_err(|e| io_err("open log segment for append", &seg.path, e))?;
        if let Some((bytes, reason)) = end.torn {
            file.set_len(end.valid_len)
                .map_err(|e| io_err("cut torn record from", &seg.path, e))?;
            recovery.torn = true;
            recovery.dropped_bytes = bytes;
            recovery.reason = Some(reason);
        }
        self.next_seq = end.next_seq;
        self.chain = end.chain;
        self.live = Some(LiveSegment {
            file: Some(file),
            path: seg.path.clone(),
            created_ns: end.header.created_ns,
            len: end.valid_len,
            records: end.next_seq - end.header.first_seq,
        });
        recovery.segment = Some(seg.path.clone());
        Ok(())
    }

    /// The device directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live segment, once one exists.
    pub fn segment_path(&self) -> Option<&Path> {
        self.live.as_ref().map(|l| l.path.as_path())
    }

    /// Chain value of the last record written (the head of the hash chain).
    pub fn chain_head(&self) -> Chain {
        self.chain
    }

    /// Wait until the background compression of closed segments asked for so far is done (a no-op
    /// without [`LogOptions::compress_level`]).
    pub fn wait_for_compression(&self) {
        #[cfg(feature = "compress")]
        if let Some(c) = &self.compressor {
            c.wait();
        }
    }

    /// Force everything written so far to stable storage (`fdatasync`), and the directory too
    /// when a segment was created since the last sync (so that its name is durable).
    pub fn sync(&mut self) -> Result<()> {
        if let Some(live) = &self.live
            && let Some(file) = &live.file
        {
            file.sync_data()
                .map_err(|e| io_err("sync log segment", &live.path, e))?;
        }
        if self.dir_unsynced {
            self.sync_dir()?;
            self.dir_unsynced = false;
        }
        self.unsynced_since = None;
        Ok(())
    }

    /// Sync the directory, so that a new segment file's name is durable too.
    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("sync log directory", &self.dir, e))
    }

    /// After a record reached the kernel: make it durable now if the policy or its kind asks for
    /// it, otherwise note that something waits for the next sync.
    fn after_write(&mut self, kind: crate::record::RecordKind) -> Result<()> {
        use crate::record::RecordKind as K;
        let now_due = match self.opts.fsync {
            Fsync::Never => false,
            Fsync::Always => true,
            // What a user was told is written must be on disk when they are told.
            Fsync::Interval(_) => matches!(kind, K::Note | K::Mark | K::Power | K::Gap),
        };
        if now_due {
            return self.sync();
        }
        if self.opts.fsync != Fsync::Never && self.unsynced_since.is_none() {
            self.unsynced_since = Some(std::time::Instant::now());
        }
        Ok(())
    }

    fn needs_rotation(&self, record_len: u64, time_ns: u64) -> bool {
        self.live.as_ref().is_some_and(|l| {
            l.records > 0
                && (l.len + record_len > self.opts.segment_max_bytes
                    || u128::from(time_ns.saturating_sub(l.created_ns))
                        >= self.opts.segment_max_age.as_nanos())
        })
    }

    /// Append one chunk: rotate if due, then a single vectored write of the framed record.
    fn append_chunk(&mut self, chunk: &Chunk) -> Result<()> {
        if chunk.seq != self.next_seq {
            return Err(Error::io(
                format!("append to log {}", self.dir.display()),
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "chunk seq {} but the log expects {}",
                        chunk.seq, self.next_seq
                    ),
                ),
            ));
        }
        // The record after this one needs a number too; u64::MAX has none, so it is never
        // written (readers saturate at it, and a second record would repeat it).
        let Some(next_seq) = chunk.seq.checked_add(1) else {
            return Err(Error::io(
                format!("append to log {}", self.dir.display()),
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "chunk seq {} is the last sequence number; the log has no room for it",
                        chunk.seq
                    ),
                ),
            ));
        };
        let fields = RecordFields::of_chunk(chunk);
        let record_len = fields.encoded_len()? as u64;
        let rotated = self.needs_rotation(record_len, chunk.time_ns);
        if rotated {
            // A closed segment is always durable, whatever the policy.
            self.sync()?;
            self.live = None;
        }
        let (head, chain) = format::frame_record(&mut self.scratch, &self.chain, &fields)?;
        let (head_bytes, tail_bytes) = self.scratch.split_at(head);
        if self.live.is_none() {
            let path = self.dir.join(segment_file_name(chunk.seq));
            let file = OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| io_err("create log segment", &path, e))?;
            self.live = Some(LiveSegment {
                file: Some(file),
                path,
                created_ns: chunk.time_ns,
                len: 0,
                records: 0,
            });
            // The new name is made durable with the segment's first sync, not now: a thousand
            // consoles starting at once would each wait for a journal commit here, twice.
            self.dir_unsynced = self.opts.fsync != Fsync::Never;
        }
        let Some(live) = &mut self.live else {
            return Err(Error::io(
                format!("append to log {}", self.dir.display()),
                io::Error::other("no live segment"),
            ));
        };
        if live.file.is_none() {
            live.file = Some(reopen(live)?);
        }
        if self.dirty {
            if let Some(f) = &live.file {
                f.set_len(live.len)
                    .map_err(|e| io_err("cut failed write from", &live.path, e))?;
            }
            self.dirty = false;
        }
        // A segment's header goes out with its first record, in the same write.
        let header = (live.len == 0).then(|| {
            SegmentHeader {
                first_seq: chunk.seq,
                created_ns: live.created_ns,
                prev_chain: self.chain,
            }
            .encode()
        });
        let header_bytes: &[u8] = header.as_ref().map_or(&[], |h| &h[..]);
        let mut bufs = [
            IoSlice::new(header_bytes),
            IoSlice::new(head_bytes),
            IoSlice::new(&chunk.bytes),
            IoSlice::new(tail_bytes),
        ];
        let written = match &mut live.file {
            Some(file) => write_all_vectored(file, &mut bufs),
            None => Err(io::Error::other("segment file is not open")),
        };
        if let Err(e) = written {
            let cut = live.file.as_ref().map(|f| f.set_len(live.len));
            self.dirty = !matches!(cut, Some(Ok(())));
            return Err(io_err("append to log segment", &live.path, e));
        }
        live.len += header_bytes.len() as u64 + record_len;
        live.records += 1;
        self.chain = chain;
        self.next_seq = next_seq;
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        if rotated {
            self.retain_logged(chunk.time_ns);
            #[cfg(feature = "compress")]
            if let Some(c) = &self.compressor {
                c.compress_before(chunk.seq);
            }
        }
        self.after_write(chunk.kind)
    }

    /// Delete the oldest closed segments beyond the retention limits. Failures are logged, not
    /// returned: the record that triggered this is already written.
    fn retain_logged(&self, now_ns: u64) {
        if self.opts.retain_max_bytes.is_none() && self.opts.retain_max_age.is_none() {
            return;
        }
        if let Err(e) = self.prune(now_ns) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "log retention failed");
        }
    }

    /// Delete the closed segments beyond the retention limits (see [`plan_retention`]).
    fn prune(&self, now_ns: u64) -> Result<Pruned> {
        // Hold the lock while planning too: the compressor swaps a segment's form under it.
        let _guard = self.files_lock.lock();
        let retention = Retention {
            max_bytes: self.opts.retain_max_bytes,
            max_age: self.opts.retain_max_age,
        };
        let live = self.live.as_ref().map(|l| l.path.as_path());
        execute_plan(&plan_retention(&self.dir, &retention, now_ns, live)?)
    }
}

/// The format version in a plain segment file's header (bytes 8..10).
fn segment_version(path: &Path) -> Result<u16> {
    use std::io::Read as _;
    let mut head = [0u8; 10];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| io_err("read log segment header", path, e))?;
    Ok(u16::from_le_bytes([head[8], head[9]]))
}

#[cfg(feature = "compress")]
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn reopen(live: &LiveSegment) -> Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .open(&live.path)
        .map_err(|e| io_err("reopen log segment", &live.path, e))?;
    let len = file
        .metadata()
        .map_err(|e| io_err("stat log segment", &live.path, e))?
        .len();
    if len != live.len {
        return Err(corrupt(
            &live.path,
            len.min(live.len),
            format!(
                "segment is {len} bytes but the writer left it at {} (changed by someone else)",
                live.len
            ),
        ));
    }
    Ok(file)
}

fn write_all_vectored(file: &mut File, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match file.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl LogWriter {
    /// The last `want` bytes of output in the live segment (all of it if it holds less), read
    /// back from its file: records are walked from the end by the length each carries at both
    /// ends, over a window that doubles until it holds enough (or the whole segment).
    fn read_back_output(&self, want: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt as _;
        let Some(live) = &self.live else {
            return Ok(Vec::new());
        };
        let body = live.len.saturating_sub(format::HEADER_LEN as u64);
        if want == 0 || body == 0 {
            return Ok(Vec::new());
        }
        let file = File::open(&live.path)?;
        let mut window = u64::try_from(want)
            .unwrap_or(u64::MAX)
            .saturating_mul(2)
            .saturating_add(4096)
            .min(body);
        loop {
            let len = usize::try_from(window).map_err(io::Error::other)?;
            let mut buf = vec![0; len];
            file.read_exact_at(&mut buf, live.len - window)?;
            // Output payloads from the newest back.
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut got = 0;
            let mut end = buf.len();
            while got < want && end > 0 {
                let Some((start, record)) =
                    buf.get(..end).and_then(format::decode_record_ending_at)
                else {
                    break;
                };
                if record.kind == crate::record::RecordKind::Output {
                    pieces.push(record.bytes);
                    got += record.bytes.len();
                }
                end = start;
            }
            if got >= want || (end == 0 && window == body) {
                let mut out = Vec::with_capacity(got.min(want));
                for piece in pieces.iter().rev() {
                    out.extend_from_slice(piece);
                }
                let cut = out.len().saturating_sub(want);
                out.drain(..cut);
                return Ok(out);
            }
            if window == body {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: a record ending at byte {} cannot be read back",
                        live.path.display(),
                        live.len - window + end as u64
                    ),
                ));
            }
            window = window.saturating_mul(2).min(body);
        }
    }
}

impl RecordSink for LogWriter {
    fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Read back from the live segment's file (see [`RecordSink::recent_output`]).
    fn recent_output(&self, want: usize) -> Option<Vec<u8>> {
        match self.read_back_output(want) {
            Ok(out) => Some(out),
            Err(e) => {
                tracing::warn!(log = %self.dir.display(), "cannot read recent output back: {e}");
                None
            }
        }
    }

    fn append(&mut self, chunk: &Chunk) -> Result<()> {
        self.append_chunk(chunk)
    }

    fn starts_segment(&self, chunk: &Chunk) -> bool {
        let Ok(len) = RecordFields::of_chunk(chunk).encoded_len() else {
            return true;
        };
        self.live.is_none() || self.needs_rotation(len as u64, chunk.time_ns)
    }

    /// Nothing is buffered in the process; this makes what was written durable and closes the
    /// segment's file descriptor so that a stopped console holds none. The next append reopens it.
    fn flush(&mut self) -> Result<()> {
        let synced = self.sync();
        if let Some(live) = &mut self.live {
            live.file = None;
        }
        synced
    }

    fn sync_deadline(&self) -> Option<std::time::Instant> {
        match self.opts.fsync {
            Fsync::Interval(d) => self.unsynced_since.map(|t| t + d),
            _ => None,
        }
    }

    fn sync(&mut self) -> Result<()> {
        LogWriter::sync(self)
    }

    fn apply_retention(&mut self, now_ns: u64) -> Result<Pruned> {
        if self.opts.retain_max_bytes.is_none() && self.opts.retain_max_age.is_none() {
            return Ok(Pruned::default());
        }
        self.prune(now_ns)
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
