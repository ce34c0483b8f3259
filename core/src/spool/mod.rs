//! The crash-safe spool (opt-in: `Options::spool_dir`, `KEPMLOG_SPOOL_DIR`). Every record a
//! logger accepts is also written to a file of its own before `log` returns, so that a task
//! killed before its records were delivered (the agent's job runner kills a task at its
//! `timeoutSeconds`), or a run whose broker never came up, loses nothing: the next logger of the
//! same job replays what is left, oldest first and before its own records, with the records'
//! original `Id`s, so that a record sent twice is recognisable.
//!
//! On the caller's thread a record costs one `write` system call of its frame into the OS's
//! page cache (no `unsafe` may map a file in the core), which survives the process being
//! killed. There is no fsync per record: a crash of the machine itself may lose the last
//! moments. The worker records how far its records are acknowledged in the run's ack file
//! (every `ACK_EVERY` records, and when everything is acknowledged), removes segments once all
//! of their records are settled, and removes the whole run when the logger ends with nothing
//! left. A spool beyond its cap drops its oldest segment, counted and reported.

mod dir;
mod frame;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::item::{Item, Kind};
use dir::{RunFiles, RunName};

/// The ack file is rewritten once the watermark moved this many records (and whenever every
/// record is acknowledged): a run killed in between replays at most this many more records.
const ACK_EVERY: u64 = 256;
/// A segment is at most this large (or an eighth of the cap, if smaller), so that the cap
/// drops little at a time and acknowledged records leave the disk soon.
const SEGMENT_MAX: u64 = 4 * 1024 * 1024;
const ACK_MAGIC: [u8; 8] = *b"KLA1\0\0\0\0";

/// The spool of one logger's run.
pub(crate) struct Spool {
    dir: PathBuf,
    run: RunName,
    cap: u64,
    segment_max: u64,
    writer: Mutex<Writer>,
    /// Sequence numbers handed out (the writer's `next_seq`, readable without its lock).
    appended: AtomicU64,
    /// Own records below this sequence number are settled (acknowledged, denied or given up
    /// as undeliverable).
    settled: AtomicU64,
    /// The last sequence number of the oldest closed segment (`u64::MAX`: none), so that the
    /// worker takes the writer's lock only when a segment can go, not on every batch of acks.
    oldest_closed_last: AtomicU64,
    ack: Mutex<AckFile>,
    /// Held for the run's life: other processes see the run is alive.
    lock: Mutex<Option<File>>,
    /// Earlier runs of the job whose processes are gone: read once by the worker
    /// (`take_backlog`), removed once all of their records are settled.
    adopted: Mutex<Vec<Adopted>>,
    /// Records dropped from the spool by the cap before they were settled.
    dropped: AtomicU64,
    reported_dropped: AtomicU64,
    write_error: Mutex<WriteError>,
    /// Notes of the backlog not yet reported.
    notes: Mutex<Vec<String>>,
}

struct Writer {
    /// `None` once the run is closed.
    file: Option<File>,
    segment: u32,
    segment_first: u64,
    segment_last: u64,
    segment_bytes: u64,
    next_seq: u64,
    /// Own earlier segments still on disk, oldest first.
    closed: VecDeque<Segment>,
    /// Bytes of the job's spool: other runs' files when this one started, plus its own.
    total: u64,
    buf: Vec<u8>,
}

struct Segment {
    number: u32,
    first: u64,
    last: u64,
    bytes: u64,
}

struct AckFile {
    file: Option<File>,
    written: u64,
}

#[derive(Default)]
struct WriteError {
    failures: u64,
    first: Option<String>,
    reported: bool,
}

struct Adopted {
    run: RunName,
    files: RunFiles,
    /// The dead run's lock, now this process's: nobody else replays it meanwhile.
    lock: Option<File>,
    bytes: u64,
}

impl Spool {
    /// Opens the spool of a new run of `job_id`'s logger `member` in `spool_dir`, and takes
    /// over the runs of the job whose processes are gone. An error names the directory and
    /// the fix.
    pub fn open(spool_dir: &Path, job_id: &str, member: u64, cap: u64) -> Result<Spool, String> {
        let dir = dir::job_dir(spool_dir, job_id)?;
        let started_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        let run = RunName {
            started_ms: u64::try_from(started_ms).unwrap_or(u64::MAX),
            pid: std::process::id(),
            member,
        };
        let fail = |what: &str, path: &Path, e: io::Error| {
            format!("cannot {what} the spool file {}: {e}", path.display())
        };
        let lock_path = dir::lock_path(&dir, &run);
        let lock = dir::create_new(&lock_path).map_err(|e| fail("create", &lock_path, e))?;
        lock.lock().map_err(|e| fail("lock", &lock_path, e))?;
        let ack_path = dir::ack_path(&dir, &run);
        let ack = dir::create_new(&ack_path).map_err(|e| fail("create", &ack_path, e))?;
        let segment_path = dir::segment_path(&dir, &run, 0);
        let file = dir::create_new(&segment_path).map_err(|e| fail("create", &segment_path, e))?;

        let runs = dir::list_runs(&dir)
            .map_err(|e| format!("cannot read the spool directory {}: {e}", dir.display()))?;
        let mut adopted = Vec::new();
        let mut others = 0;
        for (other, files) in runs {
            if other == run {
                continue;
            }
            let bytes = files_bytes(&files);
            match take_over(&dir, &other, &files) {
                Some(lock) => adopted.push(Adopted {
                    run: other,
                    files,
                    lock: Some(lock),
                    bytes,
                }),
                None => others += bytes,
            }
        }
        let total = others + adopted.iter().map(|a| a.bytes).sum::<u64>();
        Ok(Spool {
            dir,
            run,
            cap,
            segment_max: SEGMENT_MAX.min(cap / 8).max(frame::HEADER as u64 * 64),
            writer: Mutex::new(Writer {
                file: Some(file),
                segment: 0,
                segment_first: 0,
                segment_last: 0,
                segment_bytes: 0,
                next_seq: 0,
                closed: VecDeque::new(),
                total,
                buf: Vec::with_capacity(1024),
            }),
            appended: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            oldest_closed_last: AtomicU64::new(u64::MAX),
            ack: Mutex::new(AckFile {
                file: Some(ack),
                written: 0,
            }),
            lock: Mutex::new(Some(lock)),
            adopted: Mutex::new(adopted),
            dropped: AtomicU64::new(0),
            reported_dropped: AtomicU64::new(0),
            write_error: Mutex::new(WriteError::default()),
            notes: Mutex::new(Vec::new()),
        })
    }

    /// Sends a record with `send` and, when it was taken, writes its frame, in one critical
    /// section: frames get the sequence numbers of queue order, so the worker's settled
    /// positions are the spool's watermark. A failed write leaves the record accepted (it is
    /// still queued) and is counted and reported once.
    pub fn accept<E>(
        &self,
        kind: Kind,
        payload: &[u8],
        send: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let mut w = lock(&self.writer);
        send()?;
        let seq = w.next_seq;
        w.next_seq += 1;
        self.appended.store(w.next_seq, Ordering::SeqCst);
        if let Err(e) = self.write_frame(&mut w, seq, kind, payload) {
            let mut err = lock(&self.write_error);
            err.failures += 1;
            err.first.get_or_insert_with(|| e.to_string());
        }
        Ok(())
    }

    fn write_frame(&self, w: &mut Writer, seq: u64, kind: Kind, payload: &[u8]) -> io::Result<()> {
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        frame::encode(&mut buf, seq, kind, payload);
        let len = buf.len() as u64;
        let result = (|| {
            if w.segment_bytes > 0 && w.segment_bytes + len > self.segment_max {
                self.rotate(w)?;
            }
            while w.total + len > self.cap && !w.closed.is_empty() {
                self.drop_oldest(w);
            }
            let file = w
                .file
                .as_mut()
                .ok_or_else(|| io::Error::other("the run is closed"))?;
            // One write of the whole frame: the page cache has it when this returns.
            file.write_all(&buf)?;
            if w.segment_bytes == 0 {
                w.segment_first = seq;
            }
            w.segment_last = seq;
            w.segment_bytes += len;
            w.total += len;
            Ok(())
        })();
        w.buf = buf;
        result
    }

    fn rotate(&self, w: &mut Writer) -> io::Result<()> {
        let path = dir::segment_path(&self.dir, &self.run, w.segment + 1);
        let file = dir::create_new(&path)?;
        w.closed.push_back(Segment {
            number: w.segment,
            first: w.segment_first,
            last: w.segment_last,
            bytes: w.segment_bytes,
        });
        self.note_oldest(w);
        w.file = Some(file);
        w.segment += 1;
        w.segment_bytes = 0;
        Ok(())
    }

    /// The cap: removes the oldest own segment, counting its records not yet settled.
    fn drop_oldest(&self, w: &mut Writer) {
        let Some(s) = w.closed.pop_front() else {
            return;
        };
        let settled = self.settled.load(Ordering::SeqCst);
        let unsettled = (s.last + 1).saturating_sub(s.first.max(settled));
        self.dropped.fetch_add(unsettled, Ordering::SeqCst);
        let _ = fs::remove_file(dir::segment_path(&self.dir, &self.run, s.number));
        w.total = w.total.saturating_sub(s.bytes);
        self.note_oldest(w);
    }

    fn note_oldest(&self, w: &Writer) {
        let last = w.closed.front().map_or(u64::MAX, |s| s.last);
        self.oldest_closed_last.store(last, Ordering::SeqCst);
    }

    /// Reads what the adopted runs left (their records above their ack watermarks, oldest run
    /// first), within the cap, for the worker to send before the logger's own records; called
    /// once, by `Logger::new`. What to tell the operator about them (one Warning record and
    /// one diagnostic line each) goes to `take_reports`.
    pub fn take_backlog(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut notes = Vec::new();
        let mut adopted = lock(&self.adopted);
        let mut budget = self.cap;
        let mut runs: Vec<(String, Vec<frame::Frame>)> = Vec::new();
        for a in adopted.iter() {
            let watermark = a.files.ack.as_deref().map_or(0, read_ack);
            let mut frames = Vec::new();
            for path in a.files.segments.values() {
                let Ok(bytes) = read_file(path) else {
                    notes.push(format!(
                        "cannot read the spool file {} of an earlier run: its records are lost",
                        path.display()
                    ));
                    continue;
                };
                let (found, damage) = frame::decode_all(&bytes);
                frames.extend(found.into_iter().filter(|f| f.seq >= watermark));
                if let Some(d) = damage {
                    notes.push(format!(
                        "the spool file {} of an earlier run is damaged at byte {} ({}): the \
                         {} byte(s) from there were not replayed",
                        path.display(),
                        d.offset,
                        d.reason,
                        d.skipped
                    ));
                }
            }
            frames.sort_by_key(|f| f.seq);
            runs.push((describe(&a.run), frames));
        }
        // Newest records first against the cap: what does not fit is the oldest.
        let mut keep_from: Vec<usize> = vec![0; runs.len()];
        let mut over = 0u64;
        for (r, (_, frames)) in runs.iter().enumerate().rev() {
            for (i, f) in frames.iter().enumerate().rev() {
                let size = (frame::HEADER + f.payload.len()) as u64;
                if budget >= size {
                    budget -= size;
                } else {
                    keep_from[r] = keep_from[r].max(i + 1);
                    over += 1;
                }
            }
        }
        if over > 0 {
            self.dropped.fetch_add(over, Ordering::SeqCst);
            notes.push(format!(
                "{over} record(s) of earlier runs did not fit the spool's cap of {} bytes: the \
                 oldest were dropped",
                self.cap
            ));
        }
        let now = SystemTime::now();
        for ((run, frames), from) in runs.into_iter().zip(keep_from) {
            let n = frames.len().saturating_sub(from);
            if n > 0 {
                notes.push(format!(
                    "kepmlog recovered {n} record(s) that an earlier run of this job ({run}) \
                     accepted but did not see delivered; they are sent now, with their \
                     original Ids"
                ));
            }
            items.extend(frames.into_iter().skip(from).map(|f| Item {
                kind: f.kind,
                payload: Bytes::from(f.payload),
                at: now,
            }));
        }
        if items.is_empty() {
            // Nothing to wait for: the adopted runs can go now.
            release(&mut adopted, true);
        }
        lock(&self.notes).extend(notes);
        items
    }

    /// Own records below `low` are settled: the ack file follows (every `ACK_EVERY`, and
    /// whenever all are), and segments wholly below it leave the disk.
    pub fn settled(&self, low: u64) {
        let before = self.settled.fetch_max(low, Ordering::SeqCst);
        if low <= before {
            return;
        }
        let all = low >= self.appended.load(Ordering::SeqCst);
        {
            let mut ack = lock(&self.ack);
            if all || low >= ack.written + ACK_EVERY {
                write_ack(&mut ack, low);
            }
        }
        if self.oldest_closed_last.load(Ordering::SeqCst) >= low {
            return; // no segment is wholly settled: leave the callers' lock alone
        }
        // Never waits for the writer: a caller may hold it while it waits for room in the
        // queue, which only this worker makes. What is not removed now is removed next time.
        let Ok(mut w) = self.writer.try_lock() else {
            return;
        };
        while w.closed.front().is_some_and(|s| s.last < low) {
            if let Some(s) = w.closed.pop_front() {
                let _ = fs::remove_file(dir::segment_path(&self.dir, &self.run, s.number));
                w.total = w.total.saturating_sub(s.bytes);
            }
        }
        self.note_oldest(&w);
    }

    /// Every record of the adopted runs is settled: their files go.
    pub fn backlog_settled(&self) {
        release(&mut lock(&self.adopted), true);
    }

    /// The logger is gone. With everything settled the run's files go; otherwise they stay,
    /// with the watermark written, for the next run to replay (and so do the adopted runs'
    /// files, if their records are not all settled). Called once the logger's queue is closed,
    /// so no caller holds the writer waiting for room.
    pub fn close(&self, low: u64, backlog_settled: bool) {
        self.settled(low);
        let mut w = lock(&self.writer);
        let all = self.settled.load(Ordering::SeqCst) >= w.next_seq;
        // Closed before removal: Windows cannot remove a file that is open.
        w.file = None;
        let mut ack = lock(&self.ack);
        write_ack(&mut ack, self.settled.load(Ordering::SeqCst));
        ack.file = None;
        release(&mut lock(&self.adopted), backlog_settled);
        let lock_file = lock(&self.lock).take();
        if all {
            for s in w.closed.drain(..) {
                let _ = fs::remove_file(dir::segment_path(&self.dir, &self.run, s.number));
            }
            let _ = fs::remove_file(dir::segment_path(&self.dir, &self.run, w.segment));
            let _ = fs::remove_file(dir::ack_path(&self.dir, &self.run));
            // The lock file last, while still locked where the OS allows removing it.
            let path = dir::lock_path(&self.dir, &self.run);
            if cfg!(windows) {
                drop(lock_file);
                let _ = fs::remove_file(path);
            } else {
                let _ = fs::remove_file(path);
                drop(lock_file);
            }
        }
    }

    /// What to report since the last call: records the cap dropped, the first write error.
    pub fn take_reports(&self) -> Vec<String> {
        let mut notes = std::mem::take(&mut *lock(&self.notes));
        let dropped = self.dropped.load(Ordering::SeqCst);
        let reported = self.reported_dropped.swap(dropped, Ordering::SeqCst);
        if dropped > reported {
            notes.push(format!(
                "kepmlog's spool reached its cap of {} bytes and dropped {} record(s) not yet \
                 delivered from disk ({dropped} in total): they are still sent if this process \
                 lives, but a crash now would lose them; raise spool_max_bytes",
                self.cap,
                dropped - reported
            ));
        }
        let mut err = lock(&self.write_error);
        if !err.reported {
            if let Some(first) = &err.first {
                notes.push(format!(
                    "cannot write kepmlog's spool in {} ({first}): records are still sent, but \
                     a crash would lose those not yet delivered ({} write(s) failed so far)",
                    self.dir.display(),
                    err.failures
                ));
                err.reported = true;
            }
        }
        notes
    }

    /// Records the cap dropped from the spool before they were settled.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// Takes over a run whose process is gone: its lock, or a new one for files left without one
/// (a run that died while removing its files). `None` for a live run, or one another process
/// has just taken over.
fn take_over(dir: &Path, run: &RunName, files: &RunFiles) -> Option<File> {
    match &files.lock {
        Some(path) => dir::lock_if_dead(path).ok().flatten(),
        None => {
            let lock = dir::create_new(&dir::lock_path(dir, run)).ok()?;
            lock.try_lock().ok()?;
            Some(lock)
        }
    }
}

/// Lets the adopted runs go: with `remove`, their files are deleted first.
fn release(adopted: &mut Vec<Adopted>, remove: bool) {
    for mut a in adopted.drain(..) {
        if !remove {
            continue; // dropping the lock is enough: the next run takes them over
        }
        for path in a.files.segments.values().chain(a.files.ack.iter()) {
            let _ = fs::remove_file(path);
        }
        let lock = a.lock.take();
        let path = a.files.lock.clone();
        if cfg!(windows) {
            drop(lock);
        }
        if let Some(path) = path {
            let _ = fs::remove_file(path);
        }
    }
}

fn files_bytes(files: &RunFiles) -> u64 {
    files
        .segments
        .values()
        .chain(files.ack.iter())
        .filter_map(|p| fs::symlink_metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    dir::open_existing(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The watermark in an ack file; 0 (replay everything) when it cannot be read.
fn read_ack(path: &Path) -> u64 {
    match read_file(path) {
        Ok(b) if b.len() >= 16 && b[..8] == ACK_MAGIC => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[8..16]);
            u64::from_le_bytes(n)
        }
        _ => 0,
    }
}

fn write_ack(ack: &mut AckFile, low: u64) {
    let Some(file) = ack.file.as_mut() else {
        return;
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&ACK_MAGIC);
    bytes[8..].copy_from_slice(&low.to_le_bytes());
    // 16 bytes at offset 0 in one write: a reader sees the old or the new watermark.
    if write_at_start(file, &bytes).is_ok() {
        ack.written = low;
    }
}

#[cfg(unix)]
fn write_at_start(file: &File, bytes: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, 0)
}

#[cfg(windows)]
fn write_at_start(file: &File, bytes: &[u8]) -> io::Result<()> {
    let n = std::os::windows::fs::FileExt::seek_write(file, bytes, 0)?;
    if n == bytes.len() {
        Ok(())
    } else {
        Err(io::Error::other("short write"))
    }
}

fn describe(run: &RunName) -> String {
    let started = UNIX_EPOCH + Duration::from_millis(run.started_ms);
    format!(
        "pid {}, started {}",
        run.pid,
        crate::text::rfc3339_utc(started)
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic while holding it leaves nothing half-done that matters.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
