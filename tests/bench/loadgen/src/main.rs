//! `smtp-latency`: the benchmarks' open-loop SMTP latency generator (`tests/bench/accept.sh`).
//!
//! ```text
//! smtp-latency --target HOST:PORT --rate R --duration D [--connections C] [--size BYTES]
//!              [--from a@src.example] [--to b@dest.example] [--no-pipelining]
//!              [--timeline FILE]
//! ```
//!
//! Contract. Message i (0 <= i < R*D) is due at t0 + i/R, whatever the server does. C
//! connections (default 20) each greet and EHLO once, then send MAIL/RCPT/DATA/"." per
//! message; a failed connection is reopened for the next message. A free connection takes the
//! next message and waits for its due time if that is still ahead; when every connection is
//! busy, messages start late and their latency still counts from the due time, so queueing
//! shows in the percentiles (no coordinated omission). Latency runs from the due time to the
//! 250 after ".", and includes the timer's resolution (a message starts at most about 1 ms
//! after it is due). If the server advertises PIPELINING, MAIL, RCPT and DATA go out in one
//! write (RFC 2920), as a real MTA client sends them.
//!
//! Each message is a valid RFC 5322 message (From, To, Subject, Date, a Message-ID unique to
//! the message) padded to BYTES with 78-byte lines before dot-stuffing; every tenth line starts
//! with ".", so the server's dot-unstuffing is exercised.
//!
//! A non-2xx reply (354 for DATA), a closed connection or a socket error counts as one error
//! of that kind for that message. Scheduling stops after D seconds; outstanding replies then
//! get at most 10 s. Messages still in flight then count as "timeout", those never started as
//! "unsent". Percentiles (nearest rank) cover successful messages only.
//!
//! Output: two human-readable lines on stderr, and one JSON line on stdout: `offered_rate`,
//! `achieved_rate` (successes over the time from t0 to the last 250, at least D), `sent`,
//! `ok`, `errors`, `p50_ms`, `p90_ms`, `p99_ms`, `max_ms`, `error_kinds` and
//! `client_cpu_s`. `--timeline FILE` also writes one line per successful message, "seconds
//! after t0 it was due" and "latency in ms", in the order the replies came, to see whether
//! slow messages cluster in time (a stall) or spread out (queueing).
//!
//! Why not Python: on the 2-core benchmark machine the load generator shares the cores with
//! the server it measures. The asyncio generator this replaces spent 370-480 us of CPU per
//! 4 KB message (a third of a core at 600 msg/s), which queued the server's own threads behind
//! it. This one runs on one thread and spent about a third of that in the same window
//! (120-140 us).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Command-line options.
#[derive(Debug, Clone, PartialEq)]
struct Args {
    target: String,
    rate: f64,
    duration: f64,
    connections: usize,
    size: usize,
    from: String,
    to: String,
    no_pipelining: bool,
    timeline: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        target: String::new(),
        rate: 0.0,
        duration: 0.0,
        connections: 20,
        size: 4096,
        from: "a@src.example".into(),
        to: "b@dest.example".into(),
        no_pipelining: false,
        timeline: None,
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--no-pipelining" {
            a.no_pipelining = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag}: not {what}: {value}");
        match flag.as_str() {
            "--target" => a.target = value.clone(),
            "--rate" => a.rate = value.parse().map_err(|_| bad("a number"))?,
            "--duration" => a.duration = value.parse().map_err(|_| bad("a number"))?,
            "--connections" => a.connections = value.parse().map_err(|_| bad("a count"))?,
            "--size" => a.size = value.parse().map_err(|_| bad("a size in bytes"))?,
            "--from" => a.from = value.clone(),
            "--to" => a.to = value.clone(),
            "--timeline" => a.timeline = Some(value.clone()),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.target.is_empty() {
        return Err("--target HOST:PORT is required".into());
    }
    // Written so that NaN fails too.
    if !(a.rate > 0.0 && a.duration > 0.0) || a.connections == 0 {
        return Err("--rate and --duration must be > 0, --connections at least 1".into());
    }
    Ok(a)
}

/// The header of message `i` of run `run`.
fn header(run: &str, i: usize, date: &str, from: &str, to: &str) -> String {
    format!(
        "From: Bench <{from}>\r\nTo: <{to}>\r\nSubject: bench {i:09}\r\nDate: {date}\r\n\
         Message-ID: <{run}.{i:09}@bench.invalid>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
}

/// Body lines bringing a message whose header is `head_len` bytes to `size` bytes (before
/// dot-stuffing), already dot-stuffed for DATA.
fn filler(head_len: usize, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.saturating_sub(head_len) + size / 700 + 8);
    let (mut n, mut k) = (head_len, 0usize);
    while n < size {
        // 76 characters and CRLF; every tenth line starts with ".".
        let lead = if k % 10 == 0 { '.' } else { 'x' };
        let mut line = format!("{lead}{k:06}{}", "abcdefghij".repeat(7));
        line.truncate(76);
        line.push_str("\r\n");
        if size - n < line.len() {
            // The last line: shorter, but at least "x" and CRLF.
            line = "x".repeat((size - n).saturating_sub(2).max(1)) + "\r\n";
        }
        n += line.len();
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        k += 1;
    }
    out
}

/// `unix` seconds as an RFC 5322 date in UTC.
fn rfc5322_date(unix: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian, March-based years).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// Nearest-rank percentile `p` of sorted latencies, in ms.
fn percentile_ms(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(ms(sorted[rank.saturating_sub(1).min(sorted.len() - 1)]))
}

/// Milliseconds, rounded to 0.01 as the JSON shows them.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// Why a message failed, as counted in `error_kinds`.
#[derive(Debug)]
enum Fail {
    /// The server closed the connection.
    Closed,
    /// A reply that was not the expected class: the step and the code.
    Reply(&'static str, u16),
    Io(std::io::ErrorKind),
}

impl Fail {
    fn kind(&self) -> String {
        match self {
            Fail::Closed => "closed".into(),
            Fail::Reply(step, code) => format!("{step} {code}"),
            Fail::Io(kind) => format!("{kind:?}"),
        }
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Self {
        Fail::Io(e.kind())
    }
}

/// The reply code's class must be `want` (2 for 2xx, 3 for 3xx).
fn expect(code: u16, want: u16, step: &'static str) -> Result<(), Fail> {
    if code / 100 == want {
        Ok(())
    } else {
        Err(Fail::Reply(step, code))
    }
}

/// The code of a reply's first line, if it has one.
fn reply_code(line: &str) -> Option<u16> {
    line.get(..3)?.parse().ok()
}

/// One SMTP session.
struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    pipelining: bool,
    /// The last reply, every line of it.
    text: String,
    /// The message being sent: header, body and ".", reused between messages.
    buf: Vec<u8>,
}

impl Conn {
    async fn open(a: &Args) -> Result<Conn, Fail> {
        let s = TcpStream::connect(&a.target).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        let mut c = Conn {
            r: BufReader::new(r),
            w,
            pipelining: false,
            text: String::new(),
            buf: Vec::new(),
        };
        expect(c.reply().await?, 2, "greeting")?;
        c.w.write_all(b"EHLO bench.invalid\r\n").await?;
        expect(c.reply().await?, 2, "EHLO")?;
        c.pipelining = !a.no_pipelining && c.text.to_ascii_uppercase().contains("PIPELINING");
        Ok(c)
    }

    /// Read one reply, possibly of several lines, into `text`; its code.
    async fn reply(&mut self) -> Result<u16, Fail> {
        self.text.clear();
        loop {
            let start = self.text.len();
            let n = self.r.read_line(&mut self.text).await?;
            let line = &self.text[start..];
            if n == 0 || !line.ends_with('\n') {
                return Err(Fail::Closed);
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply_code(&self.text).ok_or(Fail::Reply("reply", 0));
            }
        }
    }

    /// One transaction: `cmds` is MAIL, RCPT and DATA; then header, body and ".".
    async fn send(&mut self, cmds: &[&[u8]; 3], head: &[u8], body: &[u8]) -> Result<(), Fail> {
        const STEPS: [(&str, u16); 3] = [("MAIL", 2), ("RCPT", 2), ("DATA", 3)];
        if self.pipelining {
            self.w.write_all(&cmds.concat()).await?;
            // Read all three replies, then judge them, as a pipelining client must.
            let mut codes = [0u16; 3];
            for c in codes.iter_mut() {
                *c = self.reply().await?;
            }
            for (code, (step, want)) in codes.into_iter().zip(STEPS) {
                expect(code, want, step)?;
            }
        } else {
            for (cmd, (step, want)) in cmds.iter().zip(STEPS) {
                self.w.write_all(cmd).await?;
                expect(self.reply().await?, want, step)?;
            }
        }
        self.buf.clear();
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(body);
        self.buf.extend_from_slice(b".\r\n");
        self.w.write_all(&self.buf).await?;
        expect(self.reply().await?, 2, "end of DATA")
    }
}

/// What the connections record, shared between them.
#[derive(Default)]
struct Stats {
    sent: usize,
    lat: Vec<Duration>,
    /// Each success's message index, in the order of `lat` before it is sorted.
    done: Vec<usize>,
    kinds: BTreeMap<String, usize>,
    last: Option<Instant>,
}

/// Everything a connection needs to build and send its messages.
struct Plan {
    args: Args,
    run: String,
    date: String,
    body: Vec<u8>,
    total: usize,
    t0: Instant,
    next: AtomicUsize,
    stats: Mutex<Stats>,
}

impl Plan {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One connection's loop: take the next message, wait until it is due, send it.
async fn worker(plan: Arc<Plan>, mut conn: Option<Conn>) {
    let a = &plan.args;
    let (mail, rcpt) = (
        format!("MAIL FROM:<{}>\r\n", a.from),
        format!("RCPT TO:<{}>\r\n", a.to),
    );
    let cmds: [&[u8]; 3] = [mail.as_bytes(), rcpt.as_bytes(), b"DATA\r\n"];
    loop {
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.total {
            return;
        }
        let due = plan.t0 + Duration::from_secs_f64(i as f64 / a.rate);
        tokio::time::sleep_until(due).await;
        plan.stats().sent += 1;
        let head = header(&plan.run, i, &plan.date, &a.from, &a.to);
        let result = async {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(Conn::open(a).await?),
            };
            c.send(&cmds, head.as_bytes(), &plan.body).await
        }
        .await;
        match result {
            Ok(()) => {
                let done = Instant::now();
                let mut s = plan.stats();
                s.lat.push(done - due);
                s.done.push(i);
                s.last = Some(done);
            }
            Err(e) => {
                *plan.stats().kinds.entry(e.kind()).or_default() += 1;
                conn = None;
                if matches!(e, Fail::Io(_)) {
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// CPU seconds (user and system) this process has used.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

async fn run(args: Args) -> serde_json::Value {
    let total = (args.rate * args.duration) as usize;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let run = format!("{:x}{:x}", now.as_nanos(), std::process::id());
    let date = rfc5322_date(now.as_secs());
    // The body is built once, the header (its unique Message-ID) per message.
    let head_len = header(&run, total, &date, &args.from, &args.to).len();
    let body = filler(head_len, args.size);
    // Open the connections before t0, so the first messages do not pay for it.
    let mut conns = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        match Conn::open(&args).await {
            Ok(c) => conns.push(Some(c)),
            Err(e) => {
                eprintln!("connect: {} (retried per message)", e.kind());
                conns.push(None);
            }
        }
    }
    eprintln!(
        "offering {} msg/s for {} s ({total} messages of {} bytes) over {} connections to {}",
        args.rate, args.duration, args.size, args.connections, args.target
    );
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let plan = Arc::new(Plan {
        args,
        run,
        date,
        body,
        total,
        t0,
        next: AtomicUsize::new(0),
        stats: Mutex::default(),
    });
    let mut tasks: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(worker(Arc::clone(&plan), c)))
        .collect();
    let deadline = t0 + Duration::from_secs_f64(plan.args.duration + 10.0);
    for t in &mut tasks {
        if tokio::time::timeout_at(deadline, &mut *t).await.is_err() {
            t.abort();
        }
    }
    let cpu = cpu_seconds() - cpu0;

    let mut s = plan.stats();
    let failed: usize = s.kinds.values().sum();
    let in_flight = s.sent - s.lat.len() - failed;
    if in_flight > 0 {
        *s.kinds.entry("timeout".into()).or_default() += in_flight;
    }
    if total > s.sent {
        *s.kinds.entry("unsent".into()).or_default() += total - s.sent;
    }
    if let Some(path) = &plan.args.timeline {
        let lines: String = s
            .done
            .iter()
            .zip(&s.lat)
            .map(|(&i, d)| format!("{:.4} {:.2}\n", i as f64 / plan.args.rate, ms(*d)))
            .collect();
        if let Err(e) = std::fs::write(path, lines) {
            eprintln!("smtp-latency: cannot write the timeline to {path}: {e}");
        }
    }
    s.lat.sort_unstable();
    let ok = s.lat.len();
    let errors: usize = s.kinds.values().sum();
    let span = s
        .last
        .map_or(0.0, |l| (l - t0).as_secs_f64())
        .max(plan.args.duration);
    let achieved = (ok as f64 / span * 10.0).round() / 10.0;
    let pct = |p| percentile_ms(&s.lat, p);
    let max = s.lat.last().map(|d| ms(*d));
    let show = |v: Option<f64>| v.map_or("-".into(), |v| v.to_string());
    eprintln!(
        "ok {ok} of {total}, {achieved} msg/s over {span:.2} s, errors {errors} {:?}",
        s.kinds
    );
    eprintln!(
        "latency ms: p50 {}  p90 {}  p99 {}  max {}; client CPU {cpu:.2} s",
        show(pct(50.0)),
        show(pct(90.0)),
        show(pct(99.0)),
        show(max)
    );
    serde_json::json!({
        "offered_rate": plan.args.rate,
        "achieved_rate": achieved,
        "sent": s.sent,
        "ok": ok,
        "errors": errors,
        "p50_ms": pct(50.0),
        "p90_ms": pct(90.0),
        "p99_ms": pct(99.0),
        "max_ms": max,
        "error_kinds": s.kinds,
        "client_cpu_s": (cpu * 100.0).round() / 100.0,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("smtp-latency: {e}");
            eprintln!(
                "usage: smtp-latency --target HOST:PORT --rate R --duration D [--connections C] \
                 [--size BYTES] [--from ADDR] [--to ADDR] [--no-pipelining] [--timeline FILE]"
            );
            return ExitCode::from(2);
        }
    };
    // One thread: the generator should cost the measured server as little CPU as it can.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("smtp-latency: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", rt.block_on(run(args)));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn options_parse_and_bad_ones_are_refused() {
        let a = args("--target 127.0.0.1:25 --rate 500 --duration 2 --size 100 --no-pipelining")
            .unwrap();
        assert_eq!(
            (a.target.as_str(), a.rate, a.duration, a.size, a.connections),
            ("127.0.0.1:25", 500.0, 2.0, 100, 20)
        );
        assert!(a.no_pipelining);
        assert!(args("--rate 5 --duration 1").is_err(), "no target");
        assert!(args("--target h:1 --rate 0 --duration 1").is_err());
        assert!(args("--target h:1 --rate NaN --duration 1").is_err());
        assert!(args("--target h:1 --rate 5 --duration 1 --connections 0").is_err());
        assert!(args("--target h:1 --rate x --duration 1").is_err());
        assert!(args("--target h:1 --rate 5 --duration 1 --bogus 1").is_err());
        assert!(
            args("--target h:1 --rate 5 --duration").is_err(),
            "missing value"
        );
    }

    /// Undo DATA's dot-stuffing, as a server does.
    fn unstuff(data: &[u8]) -> Vec<u8> {
        let text = String::from_utf8(data.to_vec()).unwrap();
        let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
        lines
            .iter()
            .map(|l| l.strip_prefix('.').unwrap_or(l))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn messages_are_the_asked_size_and_dot_stuffed() {
        let head = header("run", 7, "Thu, 01 Jan 1970 00:00:00 +0000", "a@x", "b@y");
        assert!(head.contains("Message-ID: <run.000000007@bench.invalid>\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
        for size in [head.len() + 1, 1000, 4096, 102_400] {
            let body = filler(head.len(), size);
            let plain = unstuff(&body);
            assert!(
                head.len() + plain.len() >= size && head.len() + plain.len() <= size + 2,
                "size {size}: got {}",
                head.len() + plain.len()
            );
            assert!(plain.ends_with(b"\r\n"));
            let text = String::from_utf8(body.clone()).unwrap();
            // Every line that starts with "." in the message went out with it doubled.
            for line in text.split("\r\n").filter(|l| l.starts_with('.')) {
                assert!(line.starts_with(".."), "unstuffed line {line:?}");
            }
            assert!(
                plain.len() < 80 || text.split("\r\n").any(|l| l.starts_with("..")),
                "no dotted line"
            );
            assert!(
                !text.contains("\r\n.\r\n"),
                "a lone dot would end DATA early"
            );
        }
    }

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_823_686),
            "Fri, 27 Nov 2026 23:54:46 +0000"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let lat: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&lat, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&lat, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&lat[..1], 99.0), Some(1.0));
        assert_eq!(percentile_ms(&[], 50.0), None);
    }

    /// A minimal SMTP server on a loopback port: 550 for recipients at `reject.example`, 250
    /// otherwise; it records each message's unstuffed size.
    async fn toy_server() -> (String, Arc<Mutex<Vec<usize>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sizes = Arc::clone(&got);
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let sizes = Arc::clone(&sizes);
                tokio::spawn(async move {
                    s.set_nodelay(true).unwrap();
                    let (r, mut w) = s.into_split();
                    let mut r = BufReader::new(r);
                    w.write_all(b"220 toy\r\n").await.unwrap();
                    let (mut line, mut rcpt_ok) = (String::new(), false);
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let reply: &[u8] = match line.get(..4).unwrap_or("") {
                            "EHLO" => b"250-toy\r\n250 PIPELINING\r\n",
                            "MAIL" => b"250 ok\r\n",
                            "RCPT" => {
                                rcpt_ok = !line.contains("reject.example");
                                if rcpt_ok {
                                    b"250 ok\r\n"
                                } else {
                                    b"550 no\r\n"
                                }
                            }
                            "DATA" if !rcpt_ok => b"554 no valid recipients\r\n",
                            "DATA" => {
                                w.write_all(b"354 go\r\n").await.unwrap();
                                let mut size = 0;
                                loop {
                                    line.clear();
                                    r.read_line(&mut line).await.unwrap();
                                    if line == ".\r\n" {
                                        break;
                                    }
                                    size += line.len() - usize::from(line.starts_with('.'));
                                }
                                sizes.lock().unwrap().push(size);
                                b"250 queued\r\n"
                            }
                            _ => b"500 what\r\n",
                        };
                        w.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        (addr, got)
    }

    #[tokio::test]
    async fn every_message_is_sent_on_time_and_failures_are_counted() {
        let (addr, got) = toy_server().await;
        let opts = format!("--target {addr} --rate 200 --duration 0.5 --connections 3 --size 2000");
        let out = run(args(&opts).unwrap()).await;
        assert_eq!(
            (out["sent"].as_u64(), out["ok"].as_u64()),
            (Some(100), Some(100)),
            "{out}"
        );
        assert_eq!(out["errors"].as_u64(), Some(0));
        // On time: the schedule holds, and a server answering at once is not made to look slow.
        assert!(out["achieved_rate"].as_f64().unwrap() > 120.0, "{out}");
        assert!(out["p99_ms"].as_f64().unwrap() < 250.0, "{out}");
        let sizes = got.lock().unwrap().clone();
        assert_eq!(sizes.len(), 100);
        assert!(
            sizes.iter().all(|&n| (2000..=2002).contains(&n)),
            "{sizes:?}"
        );

        let name = format!("smtp-latency-{}.timeline", std::process::id());
        let timeline = std::env::temp_dir().join(name);
        let out = run(args(&format!("{opts} --timeline {}", timeline.display())).unwrap()).await;
        assert_eq!(out["ok"].as_u64(), Some(100));
        let text = std::fs::read_to_string(&timeline).unwrap();
        std::fs::remove_file(&timeline).unwrap();
        let mut due: Vec<f64> = text
            .lines()
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect();
        due.sort_by(f64::total_cmp);
        assert_eq!(due.len(), 100);
        assert_eq!(
            (due[0], due[99]),
            (0.0, 0.495),
            "message i is due at i/rate"
        );

        let rejected = run(args(&format!("{opts} --to b@reject.example")).unwrap()).await;
        assert_eq!(rejected["ok"].as_u64(), Some(0), "{rejected}");
        assert_eq!(
            rejected["error_kinds"]["RCPT 550"].as_u64(),
            Some(100),
            "{rejected}"
        );
        assert_eq!(rejected["p50_ms"], serde_json::Value::Null);

        // Nothing listens: every message fails, none is lost from the count.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let refused = format!("--target {port} --rate 100 --duration 0.2 --connections 2");
        let out = run(args(&refused).unwrap()).await;
        let failed: u64 = out["error_kinds"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!((out["ok"].as_u64(), failed), (Some(0), 20), "{out}");
    }

    #[test]
    fn reply_codes_and_failures_are_named() {
        assert_eq!(reply_code("250 2.0.0 Ok\r\n"), Some(250));
        assert_eq!(reply_code("25"), None);
        assert!(expect(354, 3, "DATA").is_ok());
        assert_eq!(expect(451, 2, "MAIL").unwrap_err().kind(), "MAIL 451");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Fail::from(refused).kind(), "ConnectionRefused");
    }
}
