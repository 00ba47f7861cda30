//! The floor under fast timers on this machine: how late a SCHED_RR task (what `realtime on`
//! makes the daemon) wakes up from a timerfd armed every `period`, with nothing else to do.
//! If this shows gaps of 15 ms under load, no daemon on this machine holds deadtime 10 ms.
//!
//!   cargo run --release --example timer_latency -- [SECONDS] [PERIOD_US]   (as root for RR)
//!
//! Prints median / p90 / p99 / max of the lateness and how many wake-ups were later than
//! 1, 5 and 10 ms.

use heartbeat::runtime::os::timer::{monotonic_ns, DeadlineTimer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(10);
    let period_ns: u64 = args
        .get(1)
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(1000)
        * 1000;
    let rr = heartbeat::runtime::os::daemon::lock_memory_and_realtime(None);
    eprintln!(
        "timer_latency: SCHED_RR {}, memory locked {}, period {} us, {} s",
        rr.realtime,
        rr.memory_locked,
        period_ns / 1000,
        seconds
    );
    let mut timer = match DeadlineTimer::new() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("timer_latency: no timerfd: {e}");
            std::process::exit(1);
        }
    };
    let end = monotonic_ns() + seconds * 1_000_000_000;
    let mut next = monotonic_ns() + period_ns;
    let mut late_us: Vec<u64> = Vec::with_capacity((seconds * 1_000_000_000 / period_ns) as usize);
    while next < end {
        if let Err(e) = timer.set(Some(next)) {
            eprintln!("timer_latency: timerfd_settime: {e}");
            std::process::exit(1);
        }
        let mut pfd = libc::pollfd {
            fd: timer.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own.
        unsafe { libc::poll(&mut pfd, 1, -1) };
        let now = monotonic_ns();
        timer.fired();
        late_us.push(now.saturating_sub(next) / 1000);
        next += period_ns;
        if next < now {
            next = now + period_ns;
        }
    }
    late_us.sort_unstable();
    let q = |p: f64| late_us[((late_us.len() - 1) as f64 * p) as usize];
    let over = |ms: u64| late_us.iter().filter(|&&l| l > ms * 1000).count();
    println!(
        "wake-up lateness, us: median {} / p90 {} / p99 {} / max {} over {} wake-ups; \
         later than 1 ms: {}, 5 ms: {}, 10 ms: {}",
        q(0.5),
        q(0.9),
        q(0.99),
        late_us[late_us.len() - 1],
        late_us.len(),
        over(1),
        over(5),
        over(10)
    );
}
