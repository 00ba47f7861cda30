//! The scenarios of issue #3 as data: what is done to the pair, and after each action where
//! every group must end and which resource-script calls each node must have made to get there.
//!
//! Expectations come from the spec's `resources.md` (sections 4, 6 and the transcripts of
//! section 12); where the real 3.0.6 daemon was seen to do otherwise, the real daemon wins and a
//! comment says so.
//!
//! Notation, shared with the transcripts the runner prints:
//!
//! * placement: `A@alice B@bob`: group A (alice's line, key `svcA`, then `svcA2`) runs on alice,
//!   group B (bob's line, `svcB`) on bob; `A@alice+bob` on both, `A@-` nowhere, a `~` after a
//!   node (`A@alice~`) means only part of the group runs there;
//! * calls: `alice: -svcA2 -svcA; bob: +svcA +svcA2`: the effective calls of each node in the
//!   order it made them (`+` a start that started, `-` a stop that stopped; see the runner for
//!   what is dropped), nodes without calls left out.

use std::fmt;

/// The resource manager under test (`auto_failback` in ha.cf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Legacy,
    On,
    Off,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Legacy => "legacy",
            Mode::On => "on",
            Mode::Off => "off",
        }
    }

    /// The ha.cf line (legacy is spelt out; the other tests cover "no line at all").
    pub fn hacf_line(self) -> String {
        format!("auto_failback {}", self.name())
    }

    pub fn negotiated(self) -> bool {
        self != Mode::Legacy
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    Alice,
    Bob,
}

impl Who {
    pub const BOTH: [Who; 2] = [Who::Alice, Who::Bob];

    pub fn name(self) -> &'static str {
        match self {
            Who::Alice => "alice",
            Who::Bob => "bob",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Who::Alice => 0,
            Who::Bob => 1,
        }
    }
}

/// The resource groups, in haresources order: (label, owner, resources left to right).
pub const GROUPS: [(&str, Who, &[&str]); 2] = [
    ("A", Who::Alice, &["svcA", "svcA2"]),
    ("B", Who::Bob, &["svcB"]),
];

/// What the harness does to the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start both daemons at once.
    StartBoth,
    /// Start one daemon (again).
    Start(Who),
    /// SIGKILL, and its resources vanish with it (a crashed machine: Marker's state removed).
    Kill(Who),
    /// SIGTERM (graceful stop), then wait for the process to exit.
    Stop(Who),
    /// `hb_standby [arg]` on that node.
    Standby(Who, Option<&'static str>),
    /// `hb_takeover [arg]` on that node.
    Takeover(Who, Option<&'static str>),
    /// Every packet between the two nodes dropped.
    Partition,
    Heal,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arg = |a: &Option<&str>| a.map(|a| format!(" {a}")).unwrap_or_default();
        match self {
            Action::StartBoth => write!(f, "start both"),
            Action::Start(w) => write!(f, "start {}", w.name()),
            Action::Kill(w) => write!(f, "SIGKILL {}", w.name()),
            Action::Stop(w) => write!(f, "SIGTERM {}", w.name()),
            Action::Standby(w, a) => write!(f, "{}: hb_standby{}", w.name(), arg(a)),
            Action::Takeover(w, a) => write!(f, "{}: hb_takeover{}", w.name(), arg(a)),
            Action::Partition => write!(f, "partition"),
            Action::Heal => write!(f, "heal"),
        }
    }
}

/// Where each group runs: for each group (GROUPS order) the nodes running all of it, and the
/// nodes running only part of it (never expected).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub full: [Vec<Who>; 2],
    pub partial: [Vec<Who>; 2],
}

impl Placement {
    pub fn own() -> Placement {
        Placement::parse("A@alice B@bob")
    }

    /// Parse `A@alice B@alice+bob` or `A@-` (expectations are written by hand: a typo panics).
    pub fn parse(s: &str) -> Placement {
        let mut p = Placement {
            full: [Vec::new(), Vec::new()],
            partial: [Vec::new(), Vec::new()],
        };
        for item in s.split_whitespace() {
            let (g, nodes) = item
                .split_once('@')
                .unwrap_or_else(|| panic!("bad placement {s:?}"));
            let gi = GROUPS
                .iter()
                .position(|(l, _, _)| *l == g)
                .unwrap_or_else(|| panic!("bad group in {s:?}"));
            if nodes != "-" {
                for n in nodes.split('+') {
                    p.full[gi].push(match n {
                        "alice" => Who::Alice,
                        "bob" => Who::Bob,
                        _ => panic!("bad node in {s:?}"),
                    });
                }
            }
            p.full[gi].sort();
        }
        p
    }

    /// What `cl_status rscstatus` should say on `who` when this is stable: always `none` in
    /// legacy mode (its held set is never updated); in negotiated mode the held set, from
    /// `who`'s point of view.
    pub fn rscstatus(&self, mode: Mode, who: Who) -> &'static str {
        if !mode.negotiated() {
            return "none";
        }
        let (mut local, mut foreign) = (false, false);
        for (gi, (_, owner, _)) in GROUPS.iter().enumerate() {
            if self.full[gi].contains(&who) {
                if *owner == who {
                    local = true;
                } else {
                    foreign = true;
                }
            }
        }
        match (local, foreign) {
            (true, true) => "all",
            (true, false) => "local",
            (false, true) => "foreign",
            (false, false) => "none",
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = GROUPS
            .iter()
            .enumerate()
            .map(|(gi, (l, _, _))| {
                let mut nodes: Vec<String> =
                    self.full[gi].iter().map(|w| w.name().to_string()).collect();
                nodes.extend(self.partial[gi].iter().map(|w| format!("{}~", w.name())));
                if nodes.is_empty() {
                    format!("{l}@-")
                } else {
                    format!("{l}@{}", nodes.join("+"))
                }
            })
            .collect();
        write!(f, "{}", parts.join(" "))
    }
}

/// Effective calls per node (alice, bob), e.g. `["+svcA", "+svcA2"]`.
pub type Calls = [Vec<String>; 2];

/// Parse `alice: -svcA2 -svcA; bob: +svcA +svcA2` (or `` for none).
pub fn parse_calls(s: &str) -> Calls {
    let mut c: Calls = [Vec::new(), Vec::new()];
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (node, list) = part
            .split_once(':')
            .unwrap_or_else(|| panic!("bad calls {s:?}"));
        let i = match node.trim() {
            "alice" => 0,
            "bob" => 1,
            _ => panic!("bad node in {s:?}"),
        };
        for call in list.split_whitespace() {
            assert!(
                call.starts_with('+') || call.starts_with('-'),
                "bad call in {s:?}"
            );
            c[i].push(call.to_string());
        }
    }
    c
}

pub fn render_calls(c: &Calls) -> String {
    let parts: Vec<String> = Who::BOTH
        .iter()
        .filter(|w| !c[w.index()].is_empty())
        .map(|w| format!("{}: {}", w.name(), c[w.index()].join(" ")))
        .collect();
    if parts.is_empty() {
        "(none)".into()
    } else {
        parts.join("; ")
    }
}

/// The calls that move groups from `before` to `after` when every group that moves goes from
/// one node to the other: the node that loses a group stops its resources right to left, the
/// node that gains it starts them left to right, groups in haresources order (what
/// `givegroup`/`takegroup` do for a standby exchange, resources.md 4.6 and 7.2).
pub fn moves(before: &Placement, after: &Placement) -> Calls {
    let mut c: Calls = [Vec::new(), Vec::new()];
    for (gi, (_, _, rscs)) in GROUPS.iter().enumerate() {
        for w in Who::BOTH {
            let (had, has) = (before.full[gi].contains(&w), after.full[gi].contains(&w));
            if had && !has {
                c[w.index()].extend(rscs.iter().rev().map(|r| format!("-{r}")));
            } else if has && !had {
                c[w.index()].extend(rscs.iter().map(|r| format!("+{r}")));
            }
        }
    }
    c
}

/// A part of a scenario that the comparison treats specially, always because of a documented
/// difference of ours (README, "Differences from 3.0.6").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowance {
    /// A healed partition: 3.0.6 restarts both daemons (release everything, wait deadtime + 1 s,
    /// start over); ours gives back the groups it took and keeps the rest.
    /// For a pair with one of ours, only the placement after the step is compared with the
    /// reference; two of ours must make exactly `ours` calls.
    HealWithoutRestart { ours: Calls },
}

pub struct Step {
    pub action: Action,
    pub placement: Placement,
    pub calls: Calls,
    pub allowance: Option<Allowance>,
}

pub struct Scenario {
    pub name: &'static str,
    pub mode: Mode,
    pub steps: Vec<Step>,
}

fn step(action: Action, placement: &str, calls: &str) -> Step {
    Step {
        action,
        placement: Placement::parse(placement),
        calls: parse_calls(calls),
        allowance: None,
    }
}

const OWN: &str = "A@alice B@bob";

/// Every scenario of issue #3 in `mode`.
pub fn all(mode: Mode) -> Vec<Scenario> {
    vec![
        both_start(mode),
        late_start(mode),
        primary_killed_returns(mode),
        graceful_stop(mode),
        standby_takeover(mode),
        partition_heal(mode),
    ]
}

/// Both daemons start together (12.1 to 12.3): each runs its own group (negotiated after the
/// 10 s start-up wait, legacy at once).
fn both_start(mode: Mode) -> Scenario {
    Scenario {
        name: "both_start",
        mode,
        steps: vec![step(
            Action::StartBoth,
            OWN,
            "alice: +svcA +svcA2; bob: +svcB",
        )],
    }
}

/// alice starts alone and takes everything after initdead (the dead bob's group first: its
/// takeover is queued when bob is declared dead, before comm-up starts her own); bob joins
/// (12.4): legacy asks for its group back, `on` fails back, `off` leaves bob idle.
fn late_start(mode: Mode) -> Scenario {
    let join = match mode {
        Mode::Legacy | Mode::On => step(Action::Start(Who::Bob), OWN, "alice: -svcB; bob: +svcB"),
        Mode::Off => step(Action::Start(Who::Bob), "A@alice B@alice", ""),
    };
    Scenario {
        name: "late_start",
        mode,
        steps: vec![
            step(
                Action::Start(Who::Alice),
                "A@alice B@alice",
                "alice: +svcB +svcA +svcA2",
            ),
            join,
        ],
    }
}

/// The primary (alice) is SIGKILLed, bob takes her group (12.5 to 12.7); alice returns
/// (12.8 to 12.10): legacy and `on` give it back, `off` does not. Then bob, holding
/// whatever he holds, is killed and returns the same way.
fn primary_killed_returns(mode: Mode) -> Scenario {
    let mut steps = vec![
        step(Action::StartBoth, OWN, "alice: +svcA +svcA2; bob: +svcB"),
        step(Action::Kill(Who::Alice), "A@bob B@bob", "bob: +svcA +svcA2"),
    ];
    match mode {
        Mode::Legacy | Mode::On => steps.extend([
            step(
                Action::Start(Who::Alice),
                OWN,
                "alice: +svcA +svcA2; bob: -svcA2 -svcA",
            ),
            step(Action::Kill(Who::Bob), "A@alice B@alice", "alice: +svcB"),
            step(Action::Start(Who::Bob), OWN, "alice: -svcB; bob: +svcB"),
        ]),
        Mode::Off => steps.extend([
            step(Action::Start(Who::Alice), "A@bob B@bob", ""),
            // mach_down takes bob's group (queued at the death), alice's own acquisition
            // follows it (4.4).
            step(
                Action::Kill(Who::Bob),
                "A@alice B@alice",
                "alice: +svcB +svcA +svcA2",
            ),
            step(Action::Start(Who::Bob), "A@alice B@alice", ""),
        ]),
    }
    Scenario {
        name: "primary_killed_returns",
        mode,
        steps,
    }
}

/// Graceful stops (12.15, 12.16): the stopping node releases what it runs, the peer takes it
/// at once; the stopped node returns as after a death.
fn graceful_stop(mode: Mode) -> Scenario {
    let mut steps = vec![
        step(Action::StartBoth, OWN, "alice: +svcA +svcA2; bob: +svcB"),
        step(
            Action::Stop(Who::Alice),
            "A@bob B@bob",
            "alice: -svcA2 -svcA; bob: +svcA +svcA2",
        ),
    ];
    match mode {
        Mode::Legacy | Mode::On => steps.extend([
            step(
                Action::Start(Who::Alice),
                OWN,
                "alice: +svcA +svcA2; bob: -svcA2 -svcA",
            ),
            step(
                Action::Stop(Who::Bob),
                "A@alice B@alice",
                "alice: +svcB; bob: -svcB",
            ),
        ]),
        Mode::Off => steps.extend([
            step(Action::Start(Who::Alice), "A@bob B@bob", ""),
            // bob releases every group in file order; alice, holding nothing, acquires "what
            // she lacks" (all, file order) on his shutdone (4.7).
            step(
                Action::Stop(Who::Bob),
                "A@alice B@alice",
                "alice: +svcA +svcA2 +svcB; bob: -svcA2 -svcA -svcB",
            ),
        ]),
    }
    Scenario {
        name: "graceful_stop",
        mode,
        steps,
    }
}

/// `hb_standby` and `hb_takeover` with every argument (none, all, local, foreign, failback) on
/// each side, ordered so that in negotiated mode every command moves something (12.11 to
/// 12.13): `hb_standby S` on N hands the groups of S (N's view; failback = foreign) to the
/// peer, `hb_takeover S` on N makes the peer go standby with the mirrored set (failback and no
/// argument = all), i.e. moves the groups of S to N. `on` and `off` agree: auto failback never
/// undoes a standby while both stay up. Legacy ignores all of them (12.14): nothing moves.
fn standby_takeover(mode: Mode) -> Scenario {
    use Action::{Standby, Takeover};
    use Who::{Alice as A, Bob as B};
    let chain: [(Action, &str); 20] = [
        (Standby(A, None), "A@bob B@bob"),
        (Takeover(A, None), "A@alice B@alice"),
        (Takeover(B, Some("local")), "A@alice B@bob"),
        (Takeover(B, Some("foreign")), "A@bob B@bob"),
        (Standby(B, Some("local")), "A@bob B@alice"),
        (Standby(B, Some("foreign")), "A@alice B@alice"),
        (Takeover(B, Some("all")), "A@bob B@bob"),
        (Standby(B, Some("failback")), "A@alice B@bob"),
        (Standby(B, Some("all")), "A@alice B@alice"),
        (Takeover(B, Some("failback")), "A@bob B@bob"),
        (Standby(B, None), "A@alice B@alice"),
        (Takeover(B, None), "A@bob B@bob"),
        (Takeover(A, Some("local")), "A@alice B@bob"),
        (Takeover(A, Some("foreign")), "A@alice B@alice"),
        (Standby(A, Some("local")), "A@bob B@alice"),
        (Standby(A, Some("foreign")), "A@bob B@bob"),
        (Takeover(A, Some("all")), "A@alice B@alice"),
        (Standby(A, Some("failback")), "A@alice B@bob"),
        (Standby(A, Some("all")), "A@bob B@bob"),
        (Takeover(A, Some("failback")), "A@alice B@alice"),
    ];
    let mut steps = vec![step(
        Action::StartBoth,
        OWN,
        "alice: +svcA +svcA2; bob: +svcB",
    )];
    let mut at = Placement::own();
    for (action, to) in chain {
        let after = if mode.negotiated() {
            Placement::parse(to)
        } else {
            Placement::own()
        };
        steps.push(Step {
            action,
            calls: moves(&at, &after),
            placement: after.clone(),
            allowance: None,
        });
        at = after;
    }
    Scenario {
        name: "standby_takeover",
        mode,
        steps,
    }
}

/// Every packet between the nodes dropped: each declares the other dead and takes its group
/// (split brain); healed, 3.0.6 restarts both daemons (4.8, 12.17): both release everything
/// (every group, file order), wait deadtime + 1 s and start together again.
fn partition_heal(mode: Mode) -> Scenario {
    let mut heal = step(
        Action::Heal,
        OWN,
        "alice: -svcA2 -svcA -svcB +svcA +svcA2; bob: -svcA2 -svcA -svcB +svcB",
    );
    // README, differences from 3.0.6: in every mode ours gives back the groups it took from
    // the returning peer and keeps its own, without restarting.
    heal.allowance = Some(Allowance::HealWithoutRestart {
        ours: parse_calls("alice: -svcB; bob: -svcA2 -svcA"),
    });
    Scenario {
        name: "partition_heal",
        mode,
        steps: vec![
            step(Action::StartBoth, OWN, "alice: +svcA +svcA2; bob: +svcB"),
            step(
                Action::Partition,
                "A@alice+bob B@alice+bob",
                "alice: +svcB; bob: +svcA +svcA2",
            ),
            heal,
        ],
    }
}
