//! Segment files on disk: their names, listing a device directory, and a cursor that reads the
//! records of one segment forward, telling a torn tail (an interrupted write) from damage.
//!
//! A closed segment may be stored compressed (`NAME.mlog.zst`, one zstd frame holding exactly the
//! bytes of the plain file; see `docs/log-format.md`). Readers open it by decompressing it into
//! memory and then read it exactly like a plain one, so everything above this module sees no
//! difference.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
#[cfg(feature = "compress")]
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::log::format::{
    self, Chain, HEADER_LEN, MAX_RECORD_LEN, RECORD_OVERHEAD, RecordRef, SegmentHeader,
};

/// File name extension of segment files.
pub const SEGMENT_EXTENSION: &str = "mlog";

/// Suffix added to a segment file's name when it is compressed (`….mlog.zst`).
pub const COMPRESSED_SUFFIX: &str = ".zst";

/// The largest segment kept compressed (1 GiB). Readers hold a compressed segment in memory, so a
/// frame that claims or decompresses to more is refused as damaged before it takes more memory,
/// and the writer leaves bigger closed segments plain.
pub const MAX_DECOMPRESSED_SEGMENT: u64 = 1 << 30;

/// The longest zstd frame header (`ZSTD_FRAMEHEADERSIZE_MAX`): magic, descriptor, window, dictionary
/// id and content size.
#[cfg(feature = "compress")]
const ZSTD_FRAME_HEADER_MAX: usize = 18;

/// Memory reserved up front for a compressed segment whose frame states its size (at most this
/// much; beyond it the buffer grows only as the bytes arrive).
#[cfg(feature = "compress")]
const PREALLOC_MAX: u64 = 64 * 1024 * 1024;

/// Bytes read from a segment file at a time.
const READ_CHUNK: usize = 128 * 1024;

/// A segment file of a device directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// Sequence number of its first record (from the file name).
    pub first_seq: u64,
    /// Full path (ending in `.mlog`, or `.mlog.zst` for a compressed segment).
    pub path: PathBuf,
}

impl SegmentFile {
    /// The file name (`00000000000000000001.mlog`, or `….mlog.zst` when compressed).
    pub fn name(&self) -> String {
        self.path.file_name().map_or_else(
            || segment_file_name(self.first_seq),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Whether the segment is stored compressed.
    pub fn is_compressed(&self) -> bool {
        is_compressed(&self.path)
    }
}

/// Whether `path` names a compressed segment (`….mlog.zst`).
pub fn is_compressed(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(COMPRESSED_SUFFIX))
}

/// The path of the compressed form of the plain segment `path` (`….mlog` → `….mlog.zst`).
pub fn compressed_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(COMPRESSED_SUFFIX);
    PathBuf::from(name)
}

/// The file name of the segment whose first record has `first_seq`: 20 decimal digits and `.mlog`,
/// so that names sort like sequence numbers.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{SEGMENT_EXTENSION}")
}

/// The first sequence number encoded in a segment file name, if `name` is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_EXTENSION)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The segment files of a device directory, plain and compressed, oldest first. Other files are
/// ignored. When a segment exists in both forms (for a moment while it is being compressed, or
/// after a crash then), the compressed one is listed: it is complete once it has its name.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>> {
    let ctx = || format!("list log directory {}", dir.display());
    let mut found: BTreeMap<u64, SegmentFile> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(ctx(), e))? {
        let entry = entry.map_err(|e| Error::io(ctx(), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let (plain, compressed) = match name.strip_suffix(COMPRESSED_SUFFIX) {
            Some(plain) => (plain, true),
            None => (name, false),
        };
        if let Some(first_seq) = parse_segment_file_name(plain) {
            let seg = SegmentFile {
                first_seq,
                path: entry.path(),
            };
            if compressed || !found.contains_key(&first_seq) {
                found.insert(first_seq, seg);
            }
        }
    }
    Ok(found.into_values().collect())
}

/// The bytes of a segment: the open file of a plain segment, or a compressed one decompressed.
#[derive(Debug)]
pub(crate) enum SegmentData {
    /// A plain segment file (which may still grow, if it is the live one).
    File(File),
    /// A compressed segment's bytes.
    Memory(Vec<u8>),
}

impl SegmentData {
    /// Open the segment at `path`. A plain segment that was compressed since it was listed is
    /// opened in its compressed form.
    pub(crate) fn open(path: &Path) -> Result<SegmentData> {
        if is_compressed(path) {
            return decompress(path);
        }
        match File::open(path) {
            Ok(file) => Ok(SegmentData::File(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let packed = compressed_path(path);
                if packed.exists() {
                    decompress(&packed)
                } else {
                    Err(io_err("open log segment", path, e))
                }
            }
            Err(e) => Err(io_err("open log segment", path, e)),
        }
    }

    /// Read at `offset` like `pread`.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            SegmentData::File(f) => f.read_at(buf, offset),
            SegmentData::Memory(m) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(m.len());
                let src = m.get(start..).unwrap_or_default();
                let n = src.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
                    dst.copy_from_slice(src);
                }
                Ok(n)
            }
        }
    }

    /// The current length.
    pub(crate) fn len(&self) -> io::Result<u64> {
        match self {
            SegmentData::File(f) => Ok(f.metadata()?.len()),
            SegmentData::Memory(m) => Ok(m.len() as u64),
        }
    }

    /// Whether this is a compressed segment (which never grows and is never torn).
    pub(crate) fn is_memory(&self) -> bool {
        matches!(self, SegmentData::Memory(_))
    }
}

/// Decompress the whole compressed segment at `path`. A bad frame is [`Error::LogCorrupt`].
fn decompress(path: &Path) -> Result<SegmentData> {
    decompress_bounded(path, MAX_DECOMPRESSED_SEGMENT).map(SegmentData::Memory)
}

/// Decompress the compressed segment at `path`, refusing (as [`Error::LogCorrupt`]) a frame whose
/// header claims more than `limit` bytes before decompressing anything, and a frame that turns out
/// to hold more than its header claims (or than `limit`, without a claim) as soon as it does.
#[cfg(feature = "compress")]
pub(crate) fn decompress_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| io_err("open log segment", path, e))?;
    let mut head = [0u8; ZSTD_FRAME_HEADER_MAX];
    let got = read_full_with(&mut head, 0, |b, o| file.read_at(b, o))
        .map_err(|e| io_err("read log segment", path, e))?;
    // The writer always records the size; a frame header that cannot be read is left to the
    // decoder, which names what is wrong with it.
    let claimed = zstd::zstd_safe::get_frame_content_size(head.get(..got).unwrap_or_default())
        .ok()
        .flatten();
    if let Some(size) = claimed
        && size > limit
    {
        return Err(corrupt(
            path,
            0,
            format!(
                "its zstd frame claims {size} bytes, more than the {limit} bytes a compressed segment may hold"
            ),
        ));
    }
    let bound = claimed.unwrap_or(limit);
    let mut decoder = zstd::stream::read::Decoder::new(file)
        .map_err(|e| io_err("start decompressing log segment", path, e))?;
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(claimed.unwrap_or(0).min(PREALLOC_MAX) as usize)
        .map_err(|e| io_err("decompress log segment", path, io::Error::other(e)))?;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(path, 0, format!("cannot decompress: {e}"))),
        };
        if bytes.len() as u64 + n as u64 > bound {
            let reason = match claimed {
                Some(size) => {
                    format!("decompresses to more than the {size} bytes its frame claims")
                }
                None => format!("decompresses to more than {limit} bytes"),
            };
            return Err(corrupt(path, 0, reason));
        }
        if bytes.capacity() - bytes.len() < n {
            // Grow by doubling, but never past the bound.
            let cap = usize::try_from(bound).unwrap_or(usize::MAX);
            let want = (bytes.capacity() * 2).clamp(bytes.len() + n, cap.max(bytes.len() + n));
            bytes
                .try_reserve_exact(want - bytes.len())
                .map_err(|e| io_err("decompress log segment", path, io::Error::other(e)))?;
        }
        bytes.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    Ok(bytes)
}

/// Without the `compress` feature a compressed segment cannot be read: an error says so.
#[cfg(not(feature = "compress"))]
pub(crate) fn decompress_bounded(path: &Path, _limit: u64) -> Result<Vec<u8>> {
    Err(no_zstd(path))
}

/// The error for a compressed segment met by a build without zstd.
#[cfg(not(feature = "compress"))]
fn no_zstd(path: &Path) -> Error {
    Error::Unsupported {
        operation: "reading a compressed log segment",
        what: format!(
            "this build of mo-core (Cargo feature `compress` is off): {}",
            path.display()
        ),
    }
}

/// Read just the header of the segment at `path` (for a compressed one, without decompressing
/// the rest). `Ok(None)` for a torn header; a damaged one is [`Error::LogCorrupt`].
pub(crate) fn read_segment_header(path: &Path) -> Result<Option<SegmentHeader>> {
    if !is_compressed(path) {
        match File::open(path) {
            Ok(file) => {
                let len = file
                    .metadata()
                    .map_err(|e| io_err("stat log segment", path, e))?
                    .len();
                let data = SegmentData::File(file);
                return match read_header(&data, len)
                    .map_err(|e| io_err("read log segment", path, e))?
                {
                    HeaderRead::Valid(h) => Ok(Some(h)),
                    HeaderRead::Torn => Ok(None),
                    HeaderRead::Damaged(d) => Err(corrupt(path, 0, d.to_string())),
                };
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && compressed_path(path).exists() => {
                return read_segment_header(&compressed_path(path));
            }
            Err(e) => return Err(io_err("open log segment", path, e)),
        }
    }
    let b = read_compressed_head(path)?;
    match SegmentHeader::decode(&b) {
        Ok(h) => Ok(Some(h)),
        Err(d) => Err(corrupt(path, 0, d.to_string())),
    }
}

/// The first [`HEADER_LEN`] bytes of the compressed segment at `path`, decompressed.
#[cfg(feature = "compress")]
fn read_compressed_head(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| io_err("open log segment", path, e))?;
    let decoder = zstd::stream::read::Decoder::new(file)
        .map_err(|e| io_err("start decompressing log segment", path, e))?;
    let mut b = Vec::with_capacity(HEADER_LEN);
    decoder
        .take(HEADER_LEN as u64)
        .read_to_end(&mut b)
        .map_err(|e| corrupt(path, 0, format!("cannot decompress: {e}")))?;
    Ok(b)
}

#[cfg(not(feature = "compress"))]
fn read_compressed_head(path: &Path) -> Result<Vec<u8>> {
    Err(no_zstd(path))
}

pub(crate) fn io_err(what: &str, path: &Path, e: io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::LogCorrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Read up to `buf.len()` bytes at `offset`; returns how many were read (fewer only at EOF).
pub(crate) fn read_full_at(file: &SegmentData, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    read_full_with(buf, offset, |b, o| file.read_at(b, o))
}

/// Fill `buf` from `offset` on with `read_at` (a `pread`), retrying short reads; returns how
/// many bytes were read (fewer only at the end).
fn read_full_with(
    buf: &mut [u8],
    offset: u64,
    read_at: impl Fn(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let Some(dst) = buf.get_mut(done..) else {
            break;
        };
        match read_at(dst, offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// What the start of a segment file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderRead {
    /// A valid header.
    Valid(SegmentHeader),
    /// No valid header and nothing after it: the file was being created when the writer stopped.
    Torn,
    /// Not a valid header, and more bytes follow.
    Damaged(format::Damage),
}

pub(crate) fn read_header(file: &SegmentData, file_len: u64) -> io::Result<HeaderRead> {
    let mut b = [0u8; HEADER_LEN];
    let n = read_full_at(file, &mut b, 0)?;
    Ok(match SegmentHeader::decode(b.get(..n).unwrap_or(&[])) {
        Ok(h) => HeaderRead::Valid(h),
        Err(_) if file_len <= HEADER_LEN as u64 => HeaderRead::Torn,
        Err(d) => HeaderRead::Damaged(d),
    })
}

/// Open a segment and read its header. `Ok(None)` for a torn header (see [`HeaderRead::Torn`]);
/// a damaged header is an [`Error::LogCorrupt`].
pub(crate) fn open_segment(path: &Path) -> Result<Option<(SegmentData, u64, SegmentHeader)>> {
    let file = SegmentData::open(path)?;
    let len = file
        .len()
        .map_err(|e| io_err("stat log segment", path, e))?;
    match read_header(&file, len).map_err(|e| io_err("read log segment", path, e))? {
        HeaderRead::Valid(h) => Ok(Some((file, len, h))),
        HeaderRead::Torn => Ok(None),
        HeaderRead::Damaged(d) => Err(corrupt(path, 0, d.to_string())),
    }
}

/// Read and check the record that ends exactly at `end`, starting no earlier than `min_start`.
pub(crate) fn read_record_ending_at(
    file: &SegmentData,
    end: u64,
    min_start: u64,
) -> io::Result<Option<(u64, Vec<u8>)>> {
    if end < min_start + RECORD_OVERHEAD as u64 {
        return Ok(None);
    }
    let mut trailer = [0u8; 8];
    if read_full_at(file, &mut trailer, end - 8)? < 8 {
        return Ok(None);
    }
    let len = u64::from(u32::from_le_bytes([
        trailer[0], trailer[1], trailer[2], trailer[3],
    ]));
    if len < RECORD_OVERHEAD as u64 || len > MAX_RECORD_LEN as u64 || end - min_start < len {
        return Ok(None);
    }
    let start = end - len;
    let mut raw = vec![0u8; len as usize];
    if read_full_at(file, &mut raw, start)? < raw.len() {
        return Ok(None);
    }
    Ok(match format::check_record(&raw) {
        Ok(n) if n == raw.len() => Some((start, raw)),
        _ => None,
    })
}

/// One step of a [`Cursor`].
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A valid record at `offset`.
    Record {
        /// Byte offset of the record in the file.
        offset: u64,
        /// The record.
        record: RecordRef<'a>,
    },
    /// The end of the file, on a record boundary.
    End,
    /// The file ends with an incomplete or unreadable final record (a crash, or a write still in
    /// progress); only reported for the live segment.
    Torn {
        /// Where the torn record starts.
        offset: u64,
        /// Bytes from there to the end of the file.
        bytes: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Damage that is not a torn tail.
    Damaged {
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Reads the records of one segment forward with a small buffer.
#[derive(Debug)]
pub(crate) struct Cursor {
    file: SegmentData,
    path: PathBuf,
    header: SegmentHeader,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    pos: u64,
    file_len: u64,
    live: bool,
}

impl Cursor {
    /// Open a segment. `live` says whether it is the newest segment of its directory, whose end
    /// may be torn. `Ok(None)` when its header is torn.
    pub(crate) fn open(path: &Path, live: bool) -> Result<Option<Cursor>> {
        let Some((file, file_len, header)) = open_segment(path)? else {
            return Ok(None);
        };
        // A compressed segment is closed: it never grows, and a bad end is damage, not a tear.
        let live = live && !file.is_memory();
        Ok(Some(Cursor {
            file,
            path: path.to_path_buf(),
            header,
            buf: Vec::new(),
            start: 0,
            end: 0,
            pos: HEADER_LEN as u64,
            file_len,
            live,
        }))
    }

    pub(crate) fn header(&self) -> &SegmentHeader {
        &self.header
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&self) -> &SegmentData {
        &self.file
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Look at the file's length again (it grows while a writer appends).
    pub(crate) fn refresh(&mut self) -> Result<u64> {
        self.file_len = self
            .file
            .len()
            .map_err(|e| io_err("stat log segment", &self.path, e))?;
        Ok(self.file_len)
    }

    fn discard(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Make at least `need` bytes available in `buf[start..end]`; false if the file ends first.
    fn fill(&mut self, need: usize) -> Result<bool> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = need.max(READ_CHUNK);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        } else if self.buf.len() > 2 * READ_CHUNK && want <= READ_CHUNK && self.end <= READ_CHUNK {
            // A large record grew the buffer; give the memory back.
            self.buf.truncate(READ_CHUNK);
            self.buf.shrink_to_fit();
        }
        while self.end < need {
            let at = self.pos + self.end as u64;
            let Some(dst) = self.buf.get_mut(self.end..) else {
                return Ok(false);
            };
            let n = read_full_at(&self.file, dst, at)
                .map_err(|e| io_err("read log segment", &self.path, e))?;
            if n == 0 {
                return Ok(false);
            }
            self.end += n;
        }
        Ok(true)
    }

    /// The next step. After [`Step::End`] or [`Step::Torn`] the cursor stays where it is, so a
    /// later call (after [`Cursor::refresh`]) picks up records appended since.
    pub(crate) fn next(&mut self) -> Result<Step<'_>> {
        let offset = self.pos;
        let avail = self.file_len.saturating_sub(offset);
        if avail == 0 {
            self.discard();
            return Ok(Step::End);
        }
        if avail < 4 || !self.fill(4)? {
            return self.failure(offset, format!("record length cut short ({avail} bytes)"));
        }
        let claimed = format::peek_record_len(self.buf.get(self.start..self.end).unwrap_or(&[]))
            .map_or(0, u64::from);
        if claimed < RECORD_OVERHEAD as u64 || claimed > MAX_RECORD_LEN as u64 {
            return self.failure(offset, format!("impossible record length {claimed}"));
        }
        if claimed > avail || !self.fill(claimed as usize)? {
            return self.failure(
                offset,
                format!("record cut short: {avail} of {claimed} bytes"),
            );
        }
        let s = self.start;
        let e = s + claimed as usize;
        if let Err(d) = format::check_record(self.buf.get(s..e).unwrap_or(&[])) {
            return self.failure(offset, d.to_string());
        }
        self.start = e;
        self.pos += claimed;
        match format::decode_record(self.buf.get(s..e).unwrap_or(&[])) {
            format::Decoded::Record(record) => Ok(Step::Record { offset, record }),
            _ => Err(corrupt(&self.path, offset, "record changed while reading")),
        }
    }

    /// Classify the bad record at `offset`: a torn tail of the live segment, or damage.
    ///
    /// It is torn when no valid record ends at the end of the file after it, and the bytes from
    /// `offset` to the end look like one interrupted write: a length running past the end, a
    /// length ending exactly at the end, fewer than 4 bytes, or only zeros (power loss).
    fn failure(&mut self, offset: u64, reason: String) -> Result<Step<'static>> {
        self.discard();
        let end = self.file_len;
        if !self.live {
            return Ok(Step::Damaged { offset, reason });
        }
        let rest = end.saturating_sub(offset);
        let io = |e| io_err("read log segment", &self.path, e);
        if read_record_ending_at(&self.file, end, offset + 1)
            .map_err(io)?
            .is_some()
        {
            return Ok(Step::Damaged {
                offset,
                reason: format!("{reason}, and valid records follow"),
            });
        }
        let mut len_bytes = [0u8; 4];
        let got = read_full_at(&self.file, &mut len_bytes, offset).map_err(io)?;
        let claimed = u64::from(u32::from_le_bytes(len_bytes));
        let torn = got < 4
            || rest < 4
            || claimed >= rest
            || all_zero(&self.file, offset, end).map_err(io)?;
        Ok(if torn {
            Step::Torn {
                offset,
                bytes: rest,
                reason,
            }
        } else {
            Step::Damaged { offset, reason }
        })
    }
}

fn all_zero(file: &SegmentData, from: u64, to: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; READ_CHUNK.min(to.saturating_sub(from) as usize)];
    let mut at = from;
    while at < to {
        let want = buf.len().min((to - at) as usize);
        let Some(dst) = buf.get_mut(..want) else {
            break;
        };
        let n = read_full_at(file, dst, at)?;
        if n == 0 {
            break;
        }
        if dst.get(..n).is_some_and(|d| d.iter().any(|&b| b != 0)) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Where a segment ends: what the next record appended to it must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentEnd {
    pub(crate) header: SegmentHeader,
    /// Sequence number of the next record.
    pub(crate) next_seq: u64,
    /// Chain value of the last record (the header's for an empty segment).
    pub(crate) chain: Chain,
    /// Length of the valid part of the file.
    pub(crate) valid_len: u64,
    /// A torn tail after `valid_len`: (bytes, reason).
    pub(crate) torn: Option<(u64, String)>,
}

/// Find the end of a segment: fast from its last record when that one is intact, else by reading
/// it forward. `Ok(None)` for a torn header. Damage is an error.
pub(crate) fn scan_end(path: &Path, live: bool) -> Result<Option<SegmentEnd>> {
    let Some(mut cursor) = Cursor::open(path, live)? else {
        return Ok(None);
    };
    let header = *cursor.header();
    let len = cursor.file_len();
    let mut end = SegmentEnd {
        header,
        next_seq: header.first_seq,
        chain: header.prev_chain,
        valid_len: HEADER_LEN as u64,
        torn: None,
    };
    if len == HEADER_LEN as u64 {
        return Ok(Some(end));
    }
    let last = read_record_ending_at(cursor.file(), len, HEADER_LEN as u64)
        .map_err(|e| io_err("read log segment", path, e))?;
    if let Some((_, raw)) = last
        && let format::Decoded::Record(r) = format::decode_record(&raw)
        && r.seq >= header.first_seq
    {
        end.next_seq = r.seq.saturating_add(1);
        end.chain = r.chain;
        end.valid_len = len;
        return Ok(Some(end));
    }
    loop {
        match cursor.next()? {
            Step::Record { offset, record } => {
                if record.seq != end.next_seq {
                    return Err(corrupt(
                        path,
                        offset,
                        format!("expected seq {}, found {}", end.next_seq, record.seq),
                    ));
                }
                end.next_seq = record.seq.saturating_add(1);
                end.chain = record.chain;
                end.valid_len = offset + record.len() as u64;
            }
            Step::End => return Ok(Some(end)),
            Step::Torn { bytes, reason, .. } => {
                end.torn = Some((bytes, reason));
                return Ok(Some(end));
            }
            Step::Damaged { offset, reason } => return Err(corrupt(path, offset, reason)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_file_name(1), "00000000000000000001.mlog");
        assert_eq!(
            parse_segment_file_name("00000000000000000001.mlog"),
            Some(1)
        );
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("1.mlog"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x.mlog"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000001.mlog.zst"),
            None
        );
        assert_eq!(parse_segment_file_name("99999999999999999999.mlog"), None);
    }

    #[test]
    fn listing_sorts_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            segment_file_name(30),
            segment_file_name(2),
            "notes.txt".into(),
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let segs = list_segments(dir.path()).unwrap();
        let firsts: Vec<u64> = segs.iter().map(|s| s.first_seq).collect();
        assert_eq!(firsts, vec![2, 30]);
        assert!(list_segments(&dir.path().join("missing")).is_err());
    }
}
