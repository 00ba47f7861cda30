//! The daemon's logger (admin.md §8): `logfile`, `debugfile`, syslog and stderr, with the
//! exact line formats of 3.0.6.
//!
//! * `logfile` gets every message except `debug`; `debugfile` gets everything (same line);
//!   when both name the same file a line is written once.
//! * syslog (when `logfacility` names a facility other than `none`/`kern`): one datagram per
//!   message to `/dev/log`, `<PRI>Mmm dd hh:mm:ss heartbeat: [PID]: LEVEL: text` plus a NUL,
//!   the day space-padded as the C library's `syslog()` writes it.
//! * stderr while [`LogConfig::to_stderr`] is set (config phase, before daemonizing).
//! * `debug` messages are dropped while the debug level is 0.
//!
//! Files are opened in append mode, created 0644, `chown`ed to `hacluster:haclient` when we
//! are root and those exist, written one whole line per `write(2)`, and reopened when the
//! path's inode changes (checked at most once a minute, or by [`check_rotation`]), which logs
//! `info: log-rotate detected on logfile PATH`.
//!
//! The logger is process-global ([`init`], [`emit`]) and also backs the `log` crate facade,
//! so `log::warn!` and friends end up here (Error→`ERROR`, Warn→`WARN`, Info→`info`,
//! Debug/Trace→`debug`). Before [`init`], messages go to stderr in the default format.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cluster::LogLevel;

/// Where and how to log. Build one with [`LogConfig::new`] and set the fields from `ha.cf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `logfile`: everything but debug.
    pub logfile: Option<PathBuf>,
    /// `debugfile`: everything including debug.
    pub debugfile: Option<PathBuf>,
    /// `logfacility` as written (`daemon`, `local7`, `none`, ...). `none`, `kern` and unknown
    /// names mean no syslog.
    pub facility: Option<String>,
    /// `syslogmsgfmt`: true for `Nov 22 21:21:48 host prog: [PID]: ...` lines, false for
    /// `prog[PID]: 2026/11/22_21:21:48 ...` lines (files and stderr).
    pub syslogmsgfmt: bool,
    /// Also write every message to stderr (config phase, foreground until validated).
    pub to_stderr: bool,
    /// The debug level (`debug` directive plus `-d` flags).
    pub debug_level: u32,
    /// Program name in every line (`heartbeat`).
    pub program: String,
    /// Host name in syslog-style file lines: `uname -n`, not the cluster node name.
    pub hostname: String,
}

impl LogConfig {
    /// No files, no syslog, stderr on, syslog-style lines, debug 0.
    pub fn new(program: &str, hostname: &str) -> LogConfig {
        LogConfig {
            logfile: None,
            debugfile: None,
            facility: None,
            syslogmsgfmt: true,
            to_stderr: true,
            debug_level: 0,
            program: program.to_string(),
            hostname: hostname.to_string(),
        }
    }
}

/// A broken-down local time, as `format_line` needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tm {
    pub year: i32,
    /// 1-12
    pub month: u32,
    /// 1-31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month_name(month: u32) -> &'static str {
    MONTHS
        .get((month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("???")
}

/// The local time of a Unix timestamp (the C library's `localtime_r`, honouring `TZ`).
/// Falls back to UTC fields if the conversion fails.
pub fn local_time(unix_secs: i64) -> Tm {
    let t = unix_secs as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the
    // duration of the call and localtime_r keeps neither.
    let (ok, tm) = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let ok = !libc::localtime_r(&t, &mut tm).is_null();
        (ok, tm)
    };
    if ok {
        Tm {
            year: tm.tm_year + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
        }
    } else {
        utc_time(unix_secs)
    }
}

/// Civil UTC time of a Unix timestamp (no C library; used as a fallback).
fn utc_time(unix_secs: i64) -> Tm {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Days to civil date (proleptic Gregorian), Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Tm {
        year: year as i32,
        month: month as u32,
        day: day as u32,
        hour: (secs / 3600) as u32,
        minute: (secs / 60 % 60) as u32,
        second: (secs % 60) as u32,
    }
}

/// One log line as 3.0.6 writes it to `logfile`, `debugfile` and stderr, without the
/// trailing newline.
///
/// * `syslogmsgfmt` true: `Nov 02 21:21:48 alice heartbeat: [4126]: info: Link bob:hb0 up.`
///   (day zero-padded, unlike syslog);
/// * false: `heartbeat[28942]: 2026/11/02_22:20:05 ERROR: text`.
pub fn format_line(
    syslogmsgfmt: bool,
    tm: &Tm,
    hostname: &str,
    program: &str,
    pid: u32,
    level: LogLevel,
    text: &str,
) -> String {
    if syslogmsgfmt {
        format!(
            "{} {:02} {:02}:{:02}:{:02} {} {}: [{}]: {}: {}",
            month_name(tm.month),
            tm.day,
            tm.hour,
            tm.minute,
            tm.second,
            hostname,
            program,
            pid,
            level.word(),
            text
        )
    } else {
        format!(
            "{}[{}]: {:04}/{:02}/{:02}_{:02}:{:02}:{:02} {}: {}",
            program,
            pid,
            tm.year,
            tm.month,
            tm.day,
            tm.hour,
            tm.minute,
            tm.second,
            level.word(),
            text
        )
    }
}

/// One syslog datagram: `<PRI>Nov  2 22:09:17 heartbeat: [306]: info: text` plus a NUL byte,
/// PRI = facility × 8 + severity. The day is space-padded, as the C library's `syslog()`
/// (which 3.0.6 uses) writes it.
pub fn format_syslog(
    facility: u8,
    tm: &Tm,
    program: &str,
    pid: u32,
    level: LogLevel,
    text: &str,
) -> Vec<u8> {
    let pri = u32::from(facility) * 8 + u32::from(level.syslog_severity());
    let mut out = format!(
        "<{}>{} {:>2} {:02}:{:02}:{:02} {}: [{}]: {}: {}",
        pri,
        month_name(tm.month),
        tm.day,
        tm.hour,
        tm.minute,
        tm.second,
        program,
        pid,
        level.word(),
        text
    )
    .into_bytes();
    out.push(0);
    out
}

/// The syslog facility number of a `logfacility` name (case-sensitive, as 3.0.6), or `None`
/// for `none`, `kern` (both mean "no syslog" in 3.0.6) and unknown names.
pub fn syslog_facility(name: &str) -> Option<u8> {
    let code = match name {
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    };
    Some(code)
}

/// `uname -n` (the host name, not the cluster node name), `localhost` if unavailable.
pub fn uname_nodename() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

const ROTATION_CHECK: Duration = Duration::from_secs(60);
const DEV_LOG: &str = "/dev/log";

/// An open log file and the identity of what it was opened as.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    /// Shared with the background writer, which may still hold lines for a rotated file.
    file: Option<Arc<File>>,
    id: Option<(u64, u64)>,
}

impl LogFile {
    fn open(path: &Path) -> LogFile {
        let mut lf = LogFile {
            path: path.to_path_buf(),
            file: None,
            id: None,
        };
        lf.reopen();
        lf
    }

    fn reopen(&mut self) {
        self.file = None;
        self.id = None;
        let existed = self.path.exists();
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.path);
        let Ok(file) = file else { return };
        if let Ok(meta) = file.metadata() {
            self.id = Some((meta.dev(), meta.ino()));
            if meta.file_type().is_file() {
                if !existed {
                    // Whatever the umask, a new log file is 0644.
                    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o644));
                }
                chown_to_hacluster(&file);
            }
        }
        self.file = Some(Arc::new(file));
    }

    /// True when the path now names another file (or none): the file was rotated.
    fn rotated(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(meta) => self.id != Some((meta.dev(), meta.ino())),
            Err(_) => true,
        }
    }

    fn write_line(&mut self, line: &str) {
        if let Some(f) = self.file.as_ref() {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            match WRITER.get() {
                Some(w) => w.queue(f, buf),
                None => {
                    let _ = (&**f).write_all(&buf);
                }
            }
        }
    }
}

/// `chown hacluster:haclient`, when we are root and the user or group exists.
fn chown_to_hacluster(file: &File) {
    use std::os::fd::AsRawFd;
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let uid = nix::unistd::User::from_name("hacluster")
        .ok()
        .flatten()
        .map(|u| u.uid);
    let gid = nix::unistd::Group::from_name("haclient")
        .ok()
        .flatten()
        .map(|g| g.gid);
    if uid.is_some() || gid.is_some() {
        let _ = nix::unistd::fchown(file.as_raw_fd(), uid, gid);
    }
}

/// The `/dev/log` client.
#[derive(Debug)]
struct Syslog {
    path: PathBuf,
    facility: u8,
    sock: Option<UnixDatagram>,
}

impl Syslog {
    fn connect(&mut self) -> bool {
        if self.sock.is_none() {
            let sock = UnixDatagram::unbound().and_then(|s| {
                s.set_nonblocking(true)?;
                s.connect(&self.path)?;
                Ok(s)
            });
            self.sock = sock.ok();
        }
        self.sock.is_some()
    }

    /// Sends a datagram; reconnects once if syslogd went away. A full socket drops the
    /// message rather than blocking the daemon.
    fn send(&mut self, datagram: &[u8]) {
        for _ in 0..2 {
            if !self.connect() {
                return;
            }
            let Some(sock) = self.sock.as_ref() else {
                return;
            };
            match sock.send(datagram) {
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => self.sock = None,
            }
        }
    }
}

/// The logger behind the global functions.
#[derive(Debug)]
struct Logger {
    cfg: LogConfig,
    logfile: Option<LogFile>,
    debugfile: Option<LogFile>,
    syslog: Option<Syslog>,
    last_rotation_check: Instant,
    rotation_interval: Duration,
}

impl Logger {
    fn new(cfg: LogConfig, syslog_path: &Path) -> Logger {
        let logfile = cfg.logfile.as_deref().map(LogFile::open);
        let debugfile = match (&cfg.debugfile, &cfg.logfile) {
            (Some(d), Some(l)) if d == l => None,
            (Some(d), _) => Some(LogFile::open(d)),
            (None, _) => None,
        };
        let syslog = cfg
            .facility
            .as_deref()
            .and_then(syslog_facility)
            .map(|facility| Syslog {
                path: syslog_path.to_path_buf(),
                facility,
                sock: None,
            });
        Logger {
            cfg,
            logfile,
            debugfile,
            syslog,
            last_rotation_check: Instant::now(),
            rotation_interval: ROTATION_CHECK,
        }
    }

    fn check_rotation(&mut self, tm: &Tm) {
        self.last_rotation_check = Instant::now();
        let mut rotated = Vec::new();
        for lf in [self.logfile.as_mut(), self.debugfile.as_mut()]
            .into_iter()
            .flatten()
        {
            if lf.rotated() {
                lf.reopen();
                rotated.push(lf.path.display().to_string());
            }
        }
        for path in rotated {
            self.write(
                LogLevel::Info,
                tm,
                &format!("log-rotate detected on logfile {path}"),
            );
        }
    }

    #[cfg(test)]
    fn log(&mut self, level: LogLevel, tm: &Tm, text: &str) {
        self.log_as(None, level, tm, text);
    }

    /// `program`: the name the line goes under instead of ours (a built-in client's).
    fn log_as(&mut self, program: Option<&str>, level: LogLevel, tm: &Tm, text: &str) {
        if self.last_rotation_check.elapsed() >= self.rotation_interval {
            self.check_rotation(tm);
        }
        self.write_as(program, level, tm, text);
    }

    fn write(&mut self, level: LogLevel, tm: &Tm, text: &str) {
        self.write_as(None, level, tm, text);
    }

    fn write_as(&mut self, program: Option<&str>, level: LogLevel, tm: &Tm, text: &str) {
        let pid = std::process::id();
        let cfg = &self.cfg;
        let program = program.unwrap_or(&cfg.program);
        let line = format_line(
            cfg.syslogmsgfmt,
            tm,
            &cfg.hostname,
            program,
            pid,
            level,
            text,
        );
        // `debugfile` naming the same file as `logfile` was not opened twice (Logger::new):
        // then the log file takes the debug lines too.
        let same_file = self.debugfile.is_none() && cfg.debugfile.is_some();
        if let Some(lf) = self.logfile.as_mut() {
            if level != LogLevel::Debug || same_file {
                lf.write_line(&line);
            }
        }
        if let Some(df) = self.debugfile.as_mut() {
            df.write_line(&line);
        }
        if self.cfg.to_stderr {
            eprintln!("{line}");
        }
        if let Some(sl) = self.syslog.as_mut() {
            let dg = format_syslog(sl.facility, tm, program, pid, level, text);
            sl.send(&dg);
        }
    }
}

/// Log files written by a thread of their own (`realtime on`): a `write` to a file can block
/// for tens of milliseconds when the machine is writing a lot (dirty-page throttling, the
/// journal), and the real-time loop must not wait for a disk while a heartbeat is due. 3.0.6
/// hands its lines to a separate logging process for the same reason. The loop only queues;
/// a full queue drops the line and counts it (said in the log once there is room).
///
/// The queue is a list that grows with the lines waiting, not a ring of [`WRITER_QUEUE`] slots
/// set up front: with memory locked, a ring is 170 KiB made resident and locked at start-up for
/// lines that almost never wait.
struct BackgroundWriter {
    tx: std::sync::mpsc::Sender<WriterJob>,
    /// Lines handed to the thread and not yet written.
    waiting: Arc<AtomicUsize>,
    dropped: AtomicU32,
}

enum WriterJob {
    Line(Arc<File>, Vec<u8>),
    /// Answered once every line queued before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// Lines the loop may get ahead of the disk by.
const WRITER_QUEUE: usize = 4096;

impl BackgroundWriter {
    fn queue(&self, file: &Arc<File>, line: Vec<u8>) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let note = format!("WARN: {dropped} log lines dropped: the log file was too slow\n");
            if !self.try_send(file, note.into_bytes()) {
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
        }
        if !self.try_send(file, line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a line unless [`WRITER_QUEUE`] lines are already waiting.
    fn try_send(&self, file: &Arc<File>, line: Vec<u8>) -> bool {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= WRITER_QUEUE {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if self.tx.send(WriterJob::Line(file.clone(), line)).is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }
}

static WRITER: std::sync::OnceLock<BackgroundWriter> = std::sync::OnceLock::new();

/// Stack of the log writer thread: it only moves bytes to `write`, and with memory locked
/// every page of it that is touched stays resident.
const WRITER_STACK: usize = 64 * 1024;

/// From now on log files are written by a background thread at normal priority (call before
/// the process turns real-time: the thread must not inherit it; a small stack, since locked
/// memory keeps what it touches). [`flush`] waits for it.
pub fn write_files_in_background() {
    if WRITER.get().is_some() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel::<WriterJob>();
    let waiting = Arc::new(AtomicUsize::new(0));
    let written = waiting.clone();
    let spawned = std::thread::Builder::new()
        .name("log writer".into())
        .stack_size(WRITER_STACK)
        .spawn(move || {
            for job in rx {
                match job {
                    WriterJob::Line(f, line) => {
                        let _ = (&*f).write_all(&line);
                        written.fetch_sub(1, Ordering::AcqRel);
                    }
                    WriterJob::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
    if spawned.is_ok() {
        let _ = WRITER.set(BackgroundWriter {
            tx,
            waiting,
            dropped: AtomicU32::new(0),
        });
    }
}

/// Waits (at most a few seconds) until every queued log line is written.
pub fn flush() {
    if let Some(w) = WRITER.get() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        if w.tx.send(WriterJob::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(Duration::from_secs(5));
        }
    }
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);
static DEBUG_LEVEL: AtomicU32 = AtomicU32::new(0);
static FACADE: Facade = Facade;

fn lock() -> MutexGuard<'static, Option<Logger>> {
    // A panic while logging must not silence the daemon: ignore poisoning.
    LOGGER.lock().unwrap_or_else(|p| p.into_inner())
}

/// Installs the process-global logger (opening the files) and the `log` crate facade.
/// Calling it again is the same as [`reconfigure`].
pub fn init(cfg: LogConfig) {
    // Fails only if another `log` implementation was installed first; ours then only gets
    // the direct `emit` calls.
    let _ = ::log::set_logger(&FACADE);
    reconfigure(cfg);
}

/// Replaces the configuration (after SIGHUP, or when the config is validated): files are
/// reopened, the debug level and stderr switch are taken from `cfg`.
pub fn reconfigure(cfg: LogConfig) {
    set_debug_level(cfg.debug_level);
    let logger = Logger::new(cfg, Path::new(DEV_LOG));
    *lock() = Some(logger);
}

/// Turns the stderr copy on or off (off once daemonized or validated in the foreground).
pub fn set_to_stderr(on: bool) {
    if let Some(l) = lock().as_mut() {
        l.cfg.to_stderr = on;
    }
}

/// Sets the current debug level (SIGUSR1/SIGUSR2). `debug` messages pass only when > 0.
pub fn set_debug_level(level: u32) {
    DEBUG_LEVEL.store(level, Ordering::Relaxed);
    ::log::set_max_level(if level > 0 {
        ::log::LevelFilter::Trace
    } else {
        ::log::LevelFilter::Info
    });
}

/// The current debug level.
pub fn debug_level() -> u32 {
    DEBUG_LEVEL.load(Ordering::Relaxed)
}

/// Checks now whether a log file was rotated (renamed or removed) and reopens it.
pub fn check_rotation() {
    let tm = now_tm();
    if let Some(l) = lock().as_mut() {
        l.check_rotation(&tm);
    }
}

fn now_tm() -> Tm {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    local_time(secs)
}

/// Logs one message at `level` to every configured destination.
pub fn emit(level: LogLevel, text: &str) {
    emit_as(None, level, text);
}

/// Like [`emit`], under another program's name: a built-in client's lines carry the name the
/// real client's carry (`ipfail: [pid]: info: ...`), with our pid.
pub fn emit_as(program: Option<&str>, level: LogLevel, text: &str) {
    if level == LogLevel::Debug && debug_level() == 0 {
        return;
    }
    // Values from the configuration files may hold bytes in any encoding: shown as \xNN.
    let text = &crate::config::bytes::escape(text);
    let program = program.map(crate::config::bytes::escape);
    let program = program.as_deref();
    let tm = now_tm();
    let mut guard = lock();
    match guard.as_mut() {
        Some(l) => l.log_as(program, level, &tm, text),
        None => {
            let line = format_line(
                true,
                &tm,
                &uname_nodename(),
                program.unwrap_or("heartbeat"),
                std::process::id(),
                level,
                text,
            );
            eprintln!("{line}");
        }
    }
}

/// The `log` crate facade.
struct Facade;

fn map_level(level: ::log::Level) -> LogLevel {
    match level {
        ::log::Level::Error => LogLevel::Error,
        ::log::Level::Warn => LogLevel::Warn,
        ::log::Level::Info => LogLevel::Info,
        ::log::Level::Debug | ::log::Level::Trace => LogLevel::Debug,
    }
}

impl ::log::Log for Facade {
    fn enabled(&self, metadata: &::log::Metadata<'_>) -> bool {
        map_level(metadata.level()) != LogLevel::Debug || debug_level() > 0
    }

    fn log(&self, record: &::log::Record<'_>) {
        if self.enabled(record.metadata()) {
            emit(map_level(record.level()), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(day: u32) -> Tm {
        Tm {
            year: 2026,
            month: 11,
            day,
            hour: 21,
            minute: 21,
            second: 48,
        }
    }

    #[test]
    fn background_queue_holds_at_most_writer_queue_lines_and_says_how_many_were_dropped() {
        let dir = temp_dir("queue");
        let file = Arc::new(File::create(dir.join("log")).unwrap());
        // A writer thread that has not written anything yet: nothing leaves the queue.
        let (tx, rx) = std::sync::mpsc::channel();
        let w = BackgroundWriter {
            tx,
            waiting: Arc::new(AtomicUsize::new(0)),
            dropped: AtomicU32::new(0),
        };
        for i in 0..WRITER_QUEUE + 3 {
            w.queue(&file, format!("line {i}\n").into_bytes());
        }
        assert_eq!(w.waiting.load(Ordering::Acquire), WRITER_QUEUE);
        assert_eq!(w.dropped.load(Ordering::Relaxed), 3);
        // The disk catches up with one line: the next line first says what was lost, and is
        // itself dropped for want of room.
        let _ = rx.recv().unwrap();
        w.waiting.fetch_sub(1, Ordering::AcqRel);
        w.queue(&file, b"after\n".to_vec());
        let lines: Vec<Vec<u8>> = rx
            .try_iter()
            .map(|job| match job {
                WriterJob::Line(_, l) => l,
                WriterJob::Flush(_) => Vec::new(),
            })
            .collect();
        assert_eq!(lines.len(), WRITER_QUEUE);
        assert_eq!(
            lines.last().unwrap(),
            b"WARN: 3 log lines dropped: the log file was too slow\n"
        );
        assert_eq!(w.dropped.load(Ordering::Relaxed), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hb-log-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn syslog_style_file_line() {
        assert_eq!(
            format_line(
                true,
                &tm(22),
                "alice",
                "heartbeat",
                4126,
                LogLevel::Info,
                "Link bob:hb0 up."
            ),
            "Nov 22 21:21:48 alice heartbeat: [4126]: info: Link bob:hb0 up."
        );
        // The day is zero-padded, unlike syslog.
        assert_eq!(
            format_line(true, &tm(2), "alice", "heartbeat", 7, LogLevel::Warn, "x"),
            "Nov 02 21:21:48 alice heartbeat: [7]: WARN: x"
        );
    }

    #[test]
    fn classic_file_line() {
        let t = Tm {
            year: 2026,
            month: 11,
            day: 22,
            hour: 22,
            minute: 20,
            second: 5,
        };
        assert_eq!(
            format_line(false, &t, "alice", "heartbeat", 28942, LogLevel::Error, "Dead time [1000] is too small compared to keeplive [1000]"),
            "heartbeat[28942]: 2026/11/22_22:20:05 ERROR: Dead time [1000] is too small compared to keeplive [1000]"
        );
    }

    #[test]
    fn syslog_datagram() {
        let t = Tm {
            year: 2026,
            month: 11,
            day: 22,
            hour: 22,
            minute: 9,
            second: 17,
        };
        let dg = format_syslog(
            23,
            &t,
            "heartbeat",
            306,
            LogLevel::Info,
            "Heartbeat generation: 1795385358",
        );
        assert_eq!(
            dg,
            b"<190>Nov 22 22:09:17 heartbeat: [306]: info: Heartbeat generation: 1795385358\0"
        );
        let t = Tm { day: 2, ..t };
        let dg = format_syslog(3, &t, "heartbeat", 1, LogLevel::Crit, "x");
        assert_eq!(dg, b"<26>Nov  2 22:09:17 heartbeat: [1]: CRIT: x\0");
    }

    #[test]
    fn facilities() {
        assert_eq!(syslog_facility("daemon"), Some(3));
        assert_eq!(syslog_facility("local7"), Some(23));
        assert_eq!(syslog_facility("authpriv"), Some(10));
        assert_eq!(syslog_facility("none"), None);
        assert_eq!(syslog_facility("kern"), None);
        assert_eq!(syslog_facility("Daemon"), None);
        assert_eq!(syslog_facility("local9"), None);
    }

    #[test]
    fn utc_fallback_and_localtime() {
        assert_eq!(
            utc_time(1_795_385_358),
            Tm {
                year: 2026,
                month: 11,
                day: 22,
                hour: 22,
                minute: 9,
                second: 18
            }
        );
        assert_eq!(
            utc_time(0),
            Tm {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
        assert_eq!(utc_time(951_782_400).month, 2); // 2000-02-29
        assert_eq!(utc_time(951_782_400).day, 29);
        let lt = local_time(1_795_385_358);
        assert!((1..=12).contains(&lt.month) && (1..=31).contains(&lt.day));
        assert_eq!(month_name(0), "???");
    }

    #[test]
    fn files_syslog_and_rotation() {
        let dir = temp_dir("files");
        let logfile = dir.join("ha-log");
        let debugfile = dir.join("ha-debug");
        let sock_path = dir.join("log.sock");
        let server = UnixDatagram::bind(&sock_path).unwrap();
        server.set_nonblocking(true).unwrap();

        let mut cfg = LogConfig::new("heartbeat", "alice");
        cfg.logfile = Some(logfile.clone());
        cfg.debugfile = Some(debugfile.clone());
        cfg.facility = Some("local7".into());
        cfg.to_stderr = false;
        let mut l = Logger::new(cfg, &sock_path);
        let t = tm(22);
        l.log(LogLevel::Info, &t, "Link bob:hb0 up.");
        l.log(LogLevel::Debug, &t, "debug only");
        let pid = std::process::id();

        let log = std::fs::read_to_string(&logfile).unwrap();
        assert_eq!(
            log,
            format!("Nov 22 21:21:48 alice heartbeat: [{pid}]: info: Link bob:hb0 up.\n")
        );
        let dbg = std::fs::read_to_string(&debugfile).unwrap();
        assert_eq!(
            dbg,
            format!(
                "Nov 22 21:21:48 alice heartbeat: [{pid}]: info: Link bob:hb0 up.\n\
                 Nov 22 21:21:48 alice heartbeat: [{pid}]: debug: debug only\n"
            )
        );
        let mode = std::fs::metadata(&logfile).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);

        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            format!("<190>Nov 22 21:21:48 heartbeat: [{pid}]: info: Link bob:hb0 up.\0").as_bytes()
        );
        // A built-in client's line goes under its own name, as the real client's does.
        let n = server.recv(&mut buf).unwrap();
        assert!(buf[..n].ends_with(b"debug: debug only\0"));
        l.log_as(Some("ipfail"), LogLevel::Info, &t, "NS: We are dead. :<");
        let log = std::fs::read_to_string(&logfile).unwrap();
        assert!(
            log.ends_with(&format!(
                "Nov 22 21:21:48 alice ipfail: [{pid}]: info: NS: We are dead. :<\n"
            )),
            "{log}"
        );
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            format!("<190>Nov 22 21:21:48 ipfail: [{pid}]: info: NS: We are dead. :<\0").as_bytes()
        );

        // Rotation: rename the log away; the next check reopens a new file at the path.
        std::fs::rename(&logfile, dir.join("ha-log.1")).unwrap();
        l.rotation_interval = Duration::ZERO;
        l.log(LogLevel::Warn, &t, "after rotation");
        let log = std::fs::read_to_string(&logfile).unwrap();
        assert_eq!(
            log,
            format!(
                "Nov 22 21:21:48 alice heartbeat: [{pid}]: info: log-rotate detected on logfile {}\n\
                 Nov 22 21:21:48 alice heartbeat: [{pid}]: WARN: after rotation\n",
                logfile.display()
            )
        );
        // The old file got nothing more (its two lines: ours, then ipfail's).
        let old = std::fs::read_to_string(dir.join("ha-log.1")).unwrap();
        assert_eq!(old.lines().count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn same_file_for_log_and_debug_is_written_once() {
        let dir = temp_dir("same");
        let f = dir.join("ha-log");
        let mut cfg = LogConfig::new("heartbeat", "alice");
        cfg.logfile = Some(f.clone());
        cfg.debugfile = Some(f.clone());
        cfg.syslogmsgfmt = false;
        cfg.to_stderr = false;
        let mut l = Logger::new(cfg, Path::new("/nonexistent/log"));
        let t = tm(22);
        l.log(LogLevel::Info, &t, "one");
        l.log(LogLevel::Debug, &t, "two");
        let pid = std::process::id();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            format!(
                "heartbeat[{pid}]: 2026/11/22_21:21:48 info: one\n\
                 heartbeat[{pid}]: 2026/11/22_21:21:48 debug: two\n"
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unwritable_destinations_are_not_fatal() {
        let mut cfg = LogConfig::new("heartbeat", "alice");
        cfg.logfile = Some(PathBuf::from("/nonexistent-dir/ha-log"));
        cfg.facility = Some("daemon".into());
        cfg.to_stderr = false;
        let mut l = Logger::new(cfg, Path::new("/nonexistent-dir/log"));
        l.log(LogLevel::Error, &tm(1), "nowhere to go");
        l.rotation_interval = Duration::ZERO;
        l.log(LogLevel::Error, &tm(1), "still nowhere");
    }

    #[test]
    fn dev_null_logfile() {
        let mut cfg = LogConfig::new("heartbeat", "alice");
        cfg.logfile = Some(PathBuf::from("/dev/null"));
        cfg.to_stderr = false;
        let mut l = Logger::new(cfg, Path::new("/nonexistent/log"));
        l.log(LogLevel::Info, &tm(1), "discarded");
        assert!(!l.logfile.as_ref().unwrap().rotated());
    }

    /// The only test touching the process-global logger.
    #[test]
    fn global_logger_and_facade() {
        let dir = temp_dir("global");
        let f = dir.join("ha-debug");
        let mut cfg = LogConfig::new("heartbeat", "alice");
        cfg.debugfile = Some(f.clone());
        cfg.to_stderr = false;
        init(cfg.clone());
        emit(LogLevel::Debug, "dropped at level 0");
        ::log::debug!("dropped too");
        ::log::warn!("via the facade {}", 1);
        set_debug_level(2);
        assert_eq!(debug_level(), 2);
        emit(LogLevel::Debug, "kept at level 2");
        ::log::trace!("trace is debug");
        check_rotation();
        set_to_stderr(false);
        let text = std::fs::read_to_string(&f).unwrap();
        let words: Vec<&str> = text
            .lines()
            .map(|l| l.split_once("]: ").map(|(_, rest)| rest).unwrap_or(""))
            .collect();
        assert_eq!(
            words,
            [
                "WARN: via the facade 1",
                "debug: kept at level 2",
                "debug: trace is debug"
            ]
        );
        cfg.debugfile = None;
        reconfigure(cfg);
        assert_eq!(debug_level(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn level_mapping() {
        assert_eq!(map_level(::log::Level::Error), LogLevel::Error);
        assert_eq!(map_level(::log::Level::Warn), LogLevel::Warn);
        assert_eq!(map_level(::log::Level::Info), LogLevel::Info);
        assert_eq!(map_level(::log::Level::Trace), LogLevel::Debug);
    }
}
