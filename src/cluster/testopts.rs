//! `/etc/ha.d/OnlyForTesting`: the test switches 3.0.6 reads at start and on every SIGHUP
//! (what CTS's `TestHeartbeatComm break-communication` writes before a reload). Lines
//! `xmitloss=P`, `rcvloss=P` (probabilities 0..1) and `allownodes=a;b;` (the nodes whose
//! traffic is still received; with an empty list, sending is dropped too).
//!
//! Pure: the runtime reads the file and hands its text to [`crate::cluster::Cluster`]; the
//! decision to drop a packet is made here, from a random draw the caller supplies.

use super::LogLevel;

/// The parsed switches. Probabilities are applied as 3.0.6 does: a packet is dropped when a
/// uniform draw in `[0, 1)` is at most the probability (so `1` drops all, `0` none).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestOpts {
    /// `xmitloss`, if given.
    pub xmit_loss: Option<f64>,
    /// `rcvloss`, if given.
    pub rcv_loss: Option<f64>,
    /// `allownodes`, as written (`a;b;`), empty if not given.
    pub allow_nodes: String,
}

/// Longest `allownodes` value 3.0.6 keeps (its buffer is 512 bytes).
const ALLOW_MAX: usize = 511;

impl TestOpts {
    /// Parses the file's text the way 3.0.6 scans it (`name=value` pairs, a name made of
    /// letters and `_`, the value up to the next white space; scanning stops at the first
    /// thing that is not such a pair). Returns the switches and the lines 3.0.6 logs.
    pub fn parse(text: &str, path: &str) -> (TestOpts, Vec<(LogLevel, String)>) {
        let mut opts = TestOpts::default();
        let mut log = vec![(LogLevel::Info, "WARNING: Enabling Test Code".to_string())];
        let mut rest = text;
        loop {
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
                .unwrap_or(rest.len());
            if name_len == 0 || !rest[name_len..].starts_with('=') {
                break;
            }
            let name = &rest[..name_len];
            let after = rest[name_len + 1..].trim_start();
            let value_len = after.find(char::is_whitespace).unwrap_or(after.len());
            if value_len == 0 {
                break;
            }
            let value = &after[..value_len];
            rest = after[value_len..].trim_start();
            match name {
                "rcvloss" => {
                    let p = atof(value);
                    opts.rcv_loss = Some(p);
                    log.push((LogLevel::Info, format!("Receive loss probability = {p:.3}")));
                }
                "xmitloss" => {
                    let p = atof(value);
                    opts.xmit_loss = Some(p);
                    log.push((LogLevel::Info, format!("Xmit loss probability = {p:.3}")));
                }
                "allownodes" => {
                    let mut end = value.len().min(ALLOW_MAX);
                    while !value.is_char_boundary(end) {
                        end -= 1;
                    }
                    opts.allow_nodes = value[..end].to_string();
                    log.push((
                        LogLevel::Info,
                        format!("Allow nodes = {}", opts.allow_nodes),
                    ));
                }
                _ => log.push((
                    LogLevel::Error,
                    format!("Cannot recognize test param [{name}] in [{path}]"),
                )),
            }
        }
        log.push((
            LogLevel::Info,
            "WARNING: Above Options Now Enabled.".to_string(),
        ));
        (opts, log)
    }

    /// Drop a packet we are about to send? Only when the allowed list is empty (or starts
    /// with `;`): with nodes allowed, 3.0.6 still sends everything.
    pub fn drop_outgoing(&self, draw: f64) -> bool {
        let Some(p) = self.xmit_loss else {
            return false;
        };
        hit(draw, p) && (self.allow_nodes.is_empty() || self.allow_nodes.starts_with(';'))
    }

    /// Drop a packet received from node `from` (never one of our own)? Not when `from` is in
    /// the allowed list (as `from;`).
    pub fn drop_incoming(&self, from: &str, draw: f64) -> bool {
        let Some(p) = self.rcv_loss else {
            return false;
        };
        hit(draw, p) && !self.allows(from)
    }

    /// 3.0.6 looks for the first occurrence of the name in the list and wants a `;` after it.
    fn allows(&self, from: &str) -> bool {
        self.allow_nodes
            .find(from)
            .is_some_and(|at| self.allow_nodes[at + from.len()..].starts_with(';'))
    }
}

fn hit(draw: f64, p: f64) -> bool {
    p >= 1.0 || draw < p
}

/// C's `atof` on a token: the longest leading decimal number, else 0.
fn atof(s: &str) -> f64 {
    let b = s.as_bytes();
    let mut end = 0;
    if end < b.len() && (b[end] == b'+' || b[end] == b'-') {
        end += 1;
    }
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    if end < b.len() && b[end] == b'.' {
        end += 1;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
    }
    while end > 0 {
        if let Ok(v) = s[..end].parse::<f64>() {
            return v;
        }
        end -= 1;
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/etc/ha.d/OnlyForTesting";

    #[test]
    fn break_communication_file() {
        // What `TestHeartbeatComm break-communication` writes (no nodes allowed).
        let (o, log) = TestOpts::parse("xmitloss=1\nrcvloss=1\nallownodes=;\n", PATH);
        assert_eq!(o.xmit_loss, Some(1.0));
        assert_eq!(o.rcv_loss, Some(1.0));
        assert_eq!(o.allow_nodes, ";");
        let lines: Vec<&str> = log.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "WARNING: Enabling Test Code",
                "Xmit loss probability = 1.000",
                "Receive loss probability = 1.000",
                "Allow nodes = ;",
                "WARNING: Above Options Now Enabled.",
            ]
        );
        for draw in [0.0, 0.5, 0.999_999] {
            assert!(o.drop_outgoing(draw));
            assert!(o.drop_incoming("bob", draw));
        }
    }

    #[test]
    fn allowed_nodes_still_heard_and_sending_goes_on() {
        let (o, _) = TestOpts::parse("xmitloss=1\nrcvloss=1\nallownodes=carol;bob;\n", PATH);
        assert!(!o.drop_outgoing(0.0), "with nodes allowed, sending goes on");
        assert!(!o.drop_incoming("bob", 0.0));
        assert!(!o.drop_incoming("carol", 0.0));
        assert!(o.drop_incoming("dave", 0.0));
        // A prefix of an allowed name is not allowed ("bo" is followed by "b;", not ";").
        assert!(o.drop_incoming("bo", 0.0));
    }

    #[test]
    fn probabilities_and_defaults() {
        let (o, _) = TestOpts::parse("rcvloss=0.25\n", PATH);
        assert_eq!(o.xmit_loss, None);
        assert!(
            !o.drop_outgoing(0.0),
            "no xmitloss: nothing dropped on send"
        );
        assert!(o.drop_incoming("bob", 0.1));
        assert!(!o.drop_incoming("bob", 0.3));
        let (o, _) = TestOpts::parse("xmitloss=0\nrcvloss=0\n", PATH);
        assert!(!o.drop_outgoing(0.5) && !o.drop_incoming("bob", 0.5));
        // An empty file still enables the test code (and drops nothing).
        let (o, log) = TestOpts::parse("", PATH);
        assert_eq!(o, TestOpts::default());
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn odd_input_never_panics() {
        let (o, log) = TestOpts::parse("frob=1\nxmitloss=abc\n  rcvloss = 1\n", PATH);
        assert_eq!(
            log[1],
            (
                LogLevel::Error,
                format!("Cannot recognize test param [frob] in [{PATH}]")
            )
        );
        assert_eq!(o.xmit_loss, Some(0.0), "atof of garbage is 0");
        // Scanning stopped at "rcvloss " (no '=' right after the name), as fscanf does.
        assert_eq!(o.rcv_loss, None);
        for text in [
            "=",
            "=x",
            "a=",
            "é=1",
            "allownodes=é;",
            "\u{0}",
            "xmitloss=1e400",
        ] {
            let _ = TestOpts::parse(text, PATH);
        }
        assert_eq!(atof("1.5x"), 1.5);
        assert_eq!(atof("-"), 0.0);
        assert_eq!(atof(".5"), 0.5);
    }
}
