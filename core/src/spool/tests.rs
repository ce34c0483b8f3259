#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use super::*;
use crate::options::DEFAULT_SPOOL_MAX_BYTES;

fn spool_in(dir: &Path, member: u64, cap: u64) -> Spool {
    Spool::open(dir, "spool-job", member, cap).unwrap()
}

fn accept(spool: &Spool, message: &str) {
    spool
        .accept(Kind::Log, message.as_bytes(), || Ok::<(), ()>(()))
        .unwrap();
}

fn messages(backlog: &[Item]) -> Vec<String> {
    backlog
        .iter()
        .map(|i| String::from_utf8(i.payload.to_vec()).unwrap())
        .collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("spool-job"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_dead_runs_unsettled_records_are_replayed_by_the_next_run_and_then_removed() {
    let dir = tempfile::tempdir().unwrap();
    let first = spool_in(dir.path(), 1, DEFAULT_SPOOL_MAX_BYTES);
    for i in 0..1000 {
        accept(&first, &format!("r{i}"));
    }
    // Acknowledged up to 600, written to the ack file (600 is a multiple of nothing special:
    // ACK_EVERY lets at most 255 more be replayed).
    first.settled(600);
    // The process dies: its lock goes with it, its files stay.
    drop(first);

    let second = spool_in(dir.path(), 2, DEFAULT_SPOOL_MAX_BYTES);
    let backlog = second.take_backlog();
    let got = messages(&backlog);
    let from = 1000 - got.len();
    assert!((600 - 255..=600).contains(&from), "replayed from {from}");
    let want: Vec<String> = (from..1000).map(|i| format!("r{i}")).collect();
    assert_eq!(got, want, "the rest, oldest first, once");
    let reports = second.take_reports();
    assert!(
        reports
            .iter()
            .any(|n| n.contains("recovered") && n.contains("original Ids")),
        "{reports:?}"
    );
    // The dead run's files stay until its records are settled.
    assert!(files(dir.path())
        .iter()
        .any(|f| f.starts_with(&format!("{}-", std::process::id()))));
    let before = files(dir.path()).len();
    second.backlog_settled();
    assert!(files(dir.path()).len() < before);
    second.close(0, true);
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[test]
fn a_live_run_is_never_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let live = spool_in(dir.path(), 1, DEFAULT_SPOOL_MAX_BYTES);
    accept(&live, "mine");
    let other = spool_in(dir.path(), 2, DEFAULT_SPOOL_MAX_BYTES);
    assert!(other.take_backlog().is_empty());
    other.close(0, true);
    // The live run's files are all still there and it goes on.
    accept(&live, "still mine");
    drop(live);
    let next = spool_in(dir.path(), 3, DEFAULT_SPOOL_MAX_BYTES);
    let backlog = next.take_backlog();
    assert_eq!(messages(&backlog), ["mine", "still mine"]);
}

#[test]
fn a_run_that_ends_with_everything_settled_leaves_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_in(dir.path(), 1, DEFAULT_SPOOL_MAX_BYTES);
    for i in 0..10 {
        accept(&spool, &format!("r{i}"));
    }
    assert_eq!(files(dir.path()).len(), 3, "lock, ack, segment");
    spool.close(10, true);
    assert!(files(dir.path()).is_empty());
}

#[test]
fn a_run_that_ends_with_records_undelivered_keeps_them_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let spool = spool_in(dir.path(), 1, DEFAULT_SPOOL_MAX_BYTES);
    for i in 0..10 {
        accept(&spool, &format!("r{i}"));
    }
    // Shut down with the broker away: 3 delivered, 7 given up at the deadline.
    spool.close(3, true);
    drop(spool);
    let next = spool_in(dir.path(), 2, DEFAULT_SPOOL_MAX_BYTES);
    let want: Vec<String> = (3..10).map(|i| format!("r{i}")).collect();
    assert_eq!(messages(&next.take_backlog()), want);
}

#[test]
fn segments_wholly_settled_leave_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    // An 8 KiB cap: segments of 1 KiB (the cap's eighth, above the floor of 64 headers).
    let spool = spool_in(dir.path(), 1, 12 * 1024);
    let record = "x".repeat(100);
    for _ in 0..60 {
        accept(&spool, &record);
    }
    let segments = |d: &Path| files(d).iter().filter(|f| f.ends_with(".seg")).count();
    let before = segments(dir.path());
    assert!(before > 3, "{before} segments");
    spool.settled(60);
    assert_eq!(segments(dir.path()), 1, "only the one being written");
}

#[test]
fn a_full_spool_drops_its_oldest_records_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 12 * 1024;
    let spool = spool_in(dir.path(), 1, cap);
    let record = "y".repeat(100);
    for _ in 0..500 {
        accept(&spool, &record);
    }
    let on_disk: u64 = fs::read_dir(dir.path().join("spool-job"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= cap + 2 * 1024, "{on_disk} bytes on disk");
    let dropped = spool.dropped();
    assert!(dropped > 350, "{dropped} dropped");
    let reports = spool.take_reports();
    assert!(
        reports
            .iter()
            .any(|r| r.contains("cap") && r.contains(&format!("({dropped} in total)"))),
        "{reports:?}"
    );
    assert!(spool.take_reports().is_empty(), "reported once");
    // What is left replays: the newest records, each once.
    drop(spool);
    let next = spool_in(dir.path(), 2, cap);
    assert_eq!(next.take_backlog().len() as u64, 500 - dropped);
}

#[test]
fn damage_in_a_dead_runs_segment_is_reported_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let first = spool_in(dir.path(), 1, DEFAULT_SPOOL_MAX_BYTES);
    for i in 0..5 {
        accept(&first, &format!("r{i}"));
    }
    drop(first);
    let seg = fs::read_dir(dir.path().join("spool-job"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let len = bytes.len();
    bytes[len - 1] ^= 0xff; // the last record's payload
    fs::write(&seg, &bytes).unwrap();
    let next = spool_in(dir.path(), 2, DEFAULT_SPOOL_MAX_BYTES);
    let backlog = next.take_backlog();
    assert_eq!(messages(&backlog), ["r0", "r1", "r2", "r3"]);
    let reports = next.take_reports();
    assert!(
        reports
            .iter()
            .any(|n| n.contains("damaged") && n.contains("checksum")),
        "{reports:?}"
    );
}
