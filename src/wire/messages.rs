//! Typed cluster messages over the field model: each type 3.0.6 speaks gets a struct with
//! `parse` (from a [`Msg`], by its `t`) and `emit` (to a [`Msg`] holding the type-specific
//! fields, in the order 3.0.6 writes them; the envelope, `src`, `seq`, `hg`, `ts`, `ttl`,
//! `ld`, `auth`, is added by the membership layer when it sends).
//!
//! Parsing is lenient the way 3.0.6 is: a missing or malformed field is `None` and the
//! handler decides (usually: ignore the message). Fields whose value 3.0.6 compares as a
//! string (`weown`, `ok`, `rsc_hold`, `info`, ...) stay strings, so that a log line quotes what
//! the peer sent; numbers are parsed in the base the field uses (`firstseq` of a
//! retransmission request is decimal, every other sequence number hex).
//!
//! The built-in clients' messages (spec links.md §4.5) are here too: ipfail's
//! `num_ping_nodes`, `you_are_dead`, `abort_giveup` and its `ask_resources`, the
//! `hbapi-clstat` heartbeat sends for a client's sign-on and sign-off, dopd's `start_outdate`
//! and `outdate_rc`, and the client-status query and its answer. Client messages carry the
//! API's [`ClientIds`] (`from_id`, `to_id`, `client_gen`).

use std::borrow::Cow;

use super::{Msg, ReadFields};

/// A sequence number, generation or time as 3.0.6 writes it: lower-case hex.
pub fn hex(v: u64) -> String {
    format!("{v:x}")
}

/// A hex field (`seq`, `hg`, `ts`, `ackseq`, `dt`); None if malformed.
pub fn parse_hex(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

fn s<M: ReadFields + ?Sized>(msg: &M, name: &str) -> Option<String> {
    // Node names and group keys may be any bytes (Latin-1, EUC-KR): read losslessly.
    msg.get_text(name).map(|v| v.into_owned())
}

fn add(m: &mut Msg, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        m.add_str(name, v);
    }
}

/// `t=status`: a heartbeat (our status, advertised dead time, ACK flow control spoken).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    pub st: Option<String>,
    /// The sender's dead time in ms (hex on the wire).
    pub dt: Option<u64>,
    /// `protocol=1`: the sender does ACK flow control.
    pub protocol: Option<String>,
    /// `hbcopies=1` (ours only; 3.0.6 ignores a field it does not know): the sender sends
    /// each heartbeat twice and may be sent copies too.
    pub copies: Option<String>,
}

/// A status message's fields read in place, as [`Status`] holds them: the heartbeat path
/// copies none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRef<'m> {
    pub st: Option<Cow<'m, str>>,
    pub dt: Option<u64>,
    /// `protocol` is present.
    pub protocol: bool,
    /// `hbcopies` is present.
    pub copies: bool,
}

impl<'m> StatusRef<'m> {
    pub fn read<M: ReadFields + ?Sized>(msg: &'m M) -> StatusRef<'m> {
        StatusRef {
            st: msg.get_text("st"),
            dt: msg.get_str("dt").and_then(parse_hex),
            protocol: msg.get_text("protocol").is_some(),
            copies: msg.get_text("hbcopies").is_some(),
        }
    }
}

/// `t=NS_rexmit`: please send these again (`firstseq`/`lastseq` decimal, as 3.0.6 writes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rexmit {
    pub dest: Option<String>,
    pub first: Option<u64>,
    pub last: Option<u64>,
}

/// `t=NS_nak_rexmit`: a retransmission we cannot give (`firstseq` hex).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NakRexmit {
    pub first: Option<u64>,
    pub dest: Option<String>,
    pub info: Option<String>,
}

/// `t=NS_ackmsg`: everything up to `ackseq` (hex) arrived.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckMsg {
    pub dest: Option<String>,
    pub ackseq: Option<u64>,
}

/// `t=NS_st`: the payload of our echo requests to a ping node (`st=ping`, `info=ping` or
/// `ping_group`), which it echoes back to us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PingEcho {
    pub st: Option<String>,
    pub info: Option<String>,
}

/// `t=reqnodes`: the node list, please (a node joining during its initdead).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReqNodes {
    pub dest: Option<String>,
}

/// `t=repnodes`: the node list (3.0.6 writes `dest` before `t`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepNodes {
    pub dest: Option<String>,
    pub nodelist: Option<String>,
    pub delnodelist: Option<String>,
}

/// `t=ip-request`: the owner of group `ipaddr` (its first resource) asks for it back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpRequest {
    pub ipaddr: Option<String>,
}

/// `t=ip-request-resp`: the answer, or a node's grant to itself (`dest` = the grantee).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpRequestResp {
    pub dest: Option<String>,
    pub ipaddr: Option<String>,
    /// `yes` / `no`: the answering node ran the group.
    pub weown: Option<String>,
    /// `OK`, or anything else (`no`: the owner keeps it).
    pub ok: Option<String>,
}

impl IpRequestResp {
    /// The group is granted (3.0.6 compares the exact word `OK`).
    pub fn granted(&self) -> bool {
        self.ok.as_deref() == Some("OK")
    }
}

/// `t=resource`: the groups the sender holds (negotiated mode).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resource {
    pub rsc_hold: Option<String>,
    /// `full`: the whole set (else an addition).
    pub rtype: Option<String>,
    pub isstable: Option<String>,
    pub info: Option<String>,
    /// `quick_start=1`, ours only (3.0.6 ignores fields it does not read): the sender is
    /// starting, holds nothing, and takes its own groups without the 10 s start-up wait when
    /// its peer says the same.
    pub quick_start: Option<String>,
}

impl Resource {
    pub fn is_full(&self) -> bool {
        self.rtype.as_deref() == Some("full")
    }

    pub fn offers_quick_start(&self) -> bool {
        self.quick_start.as_deref() == Some("1")
    }

    /// `isstable` (`1`, surrounding blanks ignored); None when absent.
    pub fn stable(&self) -> Option<bool> {
        self.isstable.as_deref().map(|v| v.trim() == "1")
    }
}

/// `t=ask_resources`: the standby exchange (`info` = `me`, `other`, `done`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AskResources {
    pub rsc_hold: Option<String>,
    pub info: Option<String>,
}

/// `t=hb_takeover`: the other node's `hb_takeover` (we answer with the mirrored standby).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HbTakeover {
    pub rsc_hold: Option<String>,
}

/// `t=shutdone`: the sender released everything and stops.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shutdone {
    pub st: Option<String>,
}

/// `t=stonith`: what was done about a dead node (`result` = `unneeded`, `n_stnth`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stonith {
    pub node: Option<String>,
    pub result: Option<String>,
}

/// The client API's addressing every client message carries: the sending client
/// (`from_id`), the client it is for (`to_id`), the sender's sign-on generation
/// (`client_gen`, decimal).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientIds {
    pub from_id: Option<String>,
    pub to_id: Option<String>,
    pub client_gen: Option<String>,
}

impl ClientIds {
    /// A client talking to the same client on other nodes, as ipfail and dopd do.
    pub fn same_client(client: &str, generation: u64) -> ClientIds {
        ClientIds {
            from_id: some(client),
            to_id: some(client),
            client_gen: Some(generation.to_string()),
        }
    }

    /// The API hands a client what is addressed to it, and what names no client.
    pub fn is_for(&self, client: &str) -> bool {
        self.to_id.as_deref().is_none_or(|t| t == client)
    }

    fn parse<M: ReadFields + ?Sized>(msg: &M) -> ClientIds {
        ClientIds {
            from_id: s(msg, "from_id"),
            to_id: s(msg, "to_id"),
            client_gen: s(msg, "client_gen"),
        }
    }

    fn add_to(&self, m: &mut Msg) {
        add(m, "from_id", &self.from_id);
        add(m, "to_id", &self.to_id);
        add(m, "client_gen", &self.client_gen);
    }
}

/// `t=hbapi-clstat`: a client signed on (`st=join`, `info=signon`) or off (`st=leave`;
/// `info=died` when heartbeat stopped it) on the sending node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClStat {
    pub st: Option<String>,
    pub src: Option<String>,
    pub info: Option<String>,
    pub ids: ClientIds,
}

impl ClStat {
    /// `Some(true)` for a join, `Some(false)` for a leave, None for anything else.
    pub fn joined(&self) -> Option<bool> {
        match self.st.as_deref()? {
            "join" => Some(true),
            "leave" => Some(false),
            _ => None,
        }
    }
}

/// `t=num_ping_nodes`: ipfail's count of the ping nodes it sees, asking for the partner's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumPingNodes {
    pub src: Option<String>,
    /// Decimal as written; read with [`NumPingNodes::count`].
    pub num_ping: Option<String>,
    pub dest: Option<String>,
    pub ids: ClientIds,
}

impl NumPingNodes {
    /// The count as 3.0.6 reads it, with C's `atoi`: garbage or a negative number is 0.
    pub fn count(&self) -> usize {
        self.num_ping.as_deref().map_or(0, atoi).max(0) as usize
    }
}

/// `t=you_are_dead`: ipfail on the partner sees more ping nodes; give up the resources.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct YouAreDead {
    pub dest: Option<String>,
    pub ids: ClientIds,
}

/// `t=abort_giveup`: the counts are balanced; cancel a pending giveup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AbortGiveup {
    pub src: Option<String>,
    pub dest: Option<String>,
    pub ids: ClientIds,
}

/// `t=start_outdate`: dopd asks the receiving node to outdate DRBD resource `dop_res`, and
/// to answer `src`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StartOutdate {
    pub src: Option<String>,
    pub res: Option<String>,
    pub dest: Option<String>,
    pub ids: ClientIds,
}

/// `t=outdate_rc`: dopd's answer, the outdate return code (`dop_value`) for `dop_res`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutdateRc {
    pub value: Option<String>,
    pub res: Option<String>,
    pub src: Option<String>,
    pub dest: Option<String>,
    pub ids: ClientIds,
}

/// `t=query-cstatus`: is client `cn` signed on at `dest`? (`from_id` = the asking client).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryCstatus {
    pub dest: Option<String>,
    pub cn: Option<String>,
    pub from_id: Option<String>,
}

/// `t=respond-cstatus`: the answer (`result=OK`, `cs=online|offline`), to the asker `to_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RespondCstatus {
    pub dest: Option<String>,
    pub result: Option<String>,
    pub cn: Option<String>,
    pub to_id: Option<String>,
    pub cs: Option<String>,
}

/// `t=ask_resources` as a client sends it (ipfail's giveup): [`AskResources`] plus the
/// client's `src` and ids, in the order 3.0.6's ipfail writes them. Heartbeat reads it as an
/// [`AskResources`] (see [`Message::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientAskResources {
    pub rsc_hold: Option<String>,
    pub src: Option<String>,
    pub info: Option<String>,
    pub ids: ClientIds,
}

impl ClientAskResources {
    /// None unless `t=ask_resources`.
    pub fn parse(msg: &Msg) -> Option<ClientAskResources> {
        (msg.get_str("t")? == "ask_resources").then(|| ClientAskResources {
            rsc_hold: s(msg, "rsc_hold"),
            src: s(msg, "src"),
            info: s(msg, "info"),
            ids: ClientIds::parse(msg),
        })
    }

    pub fn emit(&self) -> Msg {
        let mut m = Msg::new();
        m.add_str("t", "ask_resources");
        add(&mut m, "rsc_hold", &self.rsc_hold);
        add(&mut m, "src", &self.src);
        add(&mut m, "info", &self.info);
        self.ids.add_to(&mut m);
        m
    }
}

/// C's `atoi`: optional blanks and sign, then digits; anything else ends the number. 3.0.6's
/// clients read numbers with it, and `drbd-peer-outdater` its `-t` the same way.
pub fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |n, d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if neg {
        -n
    } else {
        n
    }
}

/// A cluster message by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Status(Status),
    Rexmit(Rexmit),
    NakRexmit(NakRexmit),
    AckMsg(AckMsg),
    PingEcho(PingEcho),
    ReqNodes(ReqNodes),
    RepNodes(RepNodes),
    IpRequest(IpRequest),
    IpRequestResp(IpRequestResp),
    /// `t=starting`: the sender reached comm-up (negotiated mode).
    Starting,
    Resource(Resource),
    AskResources(AskResources),
    HbTakeover(HbTakeover),
    Shutdone(Shutdone),
    Stonith(Stonith),
    ClStat(ClStat),
    NumPingNodes(NumPingNodes),
    YouAreDead(YouAreDead),
    AbortGiveup(AbortGiveup),
    StartOutdate(StartOutdate),
    OutdateRc(OutdateRc),
    QueryCstatus(QueryCstatus),
    RespondCstatus(RespondCstatus),
    /// Any other type (a site's own, a client's), by its `t`.
    Other(String),
}

impl Message {
    /// As [`Message::parse`], but a status comes back without its fields
    /// (`Status::default()`): the heartbeat path reads them in place with [`StatusRef::read`]
    /// instead of copying them.
    pub fn parse_shallow<M: ReadFields + ?Sized>(msg: &M) -> Option<Message> {
        match msg.get_str("t")? {
            "status" => Some(Message::Status(Status::default())),
            _ => Message::parse(msg),
        }
    }

    /// The message's type, None without a `t`. Types compare exactly, as in 3.0.6. Reads an
    /// owned [`Msg`] or a packet's view alike.
    pub fn parse<M: ReadFields + ?Sized>(msg: &M) -> Option<Message> {
        let t = msg.get_str("t")?;
        Some(match t {
            "status" => {
                let st = StatusRef::read(msg);
                Message::Status(Status {
                    st: st.st.map(Cow::into_owned),
                    dt: st.dt,
                    protocol: s(msg, "protocol"),
                    copies: s(msg, "hbcopies"),
                })
            }
            "NS_rexmit" => Message::Rexmit(Rexmit {
                dest: s(msg, "dest"),
                first: msg.get_str("firstseq").and_then(|v| v.parse().ok()),
                last: msg.get_str("lastseq").and_then(|v| v.parse().ok()),
            }),
            "NS_nak_rexmit" => Message::NakRexmit(NakRexmit {
                first: msg.get_str("firstseq").and_then(parse_hex),
                dest: s(msg, "dest"),
                info: s(msg, "info"),
            }),
            "NS_ackmsg" => Message::AckMsg(AckMsg {
                dest: s(msg, "dest"),
                ackseq: msg.get_str("ackseq").and_then(parse_hex),
            }),
            "NS_st" => Message::PingEcho(PingEcho {
                st: s(msg, "st"),
                info: s(msg, "info"),
            }),
            "reqnodes" => Message::ReqNodes(ReqNodes {
                dest: s(msg, "dest"),
            }),
            "repnodes" => Message::RepNodes(RepNodes {
                dest: s(msg, "dest"),
                nodelist: s(msg, "nodelist"),
                delnodelist: s(msg, "delnodelist"),
            }),
            "ip-request" => Message::IpRequest(IpRequest {
                ipaddr: s(msg, "ipaddr"),
            }),
            "ip-request-resp" => Message::IpRequestResp(IpRequestResp {
                dest: s(msg, "dest"),
                ipaddr: s(msg, "ipaddr"),
                weown: s(msg, "weown"),
                ok: s(msg, "ok"),
            }),
            "starting" => Message::Starting,
            "resource" => Message::Resource(Resource {
                rsc_hold: s(msg, "rsc_hold"),
                rtype: s(msg, "rtype"),
                isstable: s(msg, "isstable"),
                info: s(msg, "info"),
                quick_start: s(msg, "quick_start"),
            }),
            "ask_resources" => Message::AskResources(AskResources {
                rsc_hold: s(msg, "rsc_hold"),
                info: s(msg, "info"),
            }),
            "hb_takeover" => Message::HbTakeover(HbTakeover {
                rsc_hold: s(msg, "rsc_hold"),
            }),
            "shutdone" => Message::Shutdone(Shutdone { st: s(msg, "st") }),
            "stonith" => Message::Stonith(Stonith {
                node: s(msg, "node"),
                result: s(msg, "result"),
            }),
            "hbapi-clstat" => Message::ClStat(ClStat {
                st: s(msg, "st"),
                src: s(msg, "src"),
                info: s(msg, "info"),
                ids: ClientIds::parse(msg),
            }),
            "num_ping_nodes" => Message::NumPingNodes(NumPingNodes {
                src: s(msg, "src"),
                num_ping: s(msg, "num_ping"),
                dest: s(msg, "dest"),
                ids: ClientIds::parse(msg),
            }),
            "you_are_dead" => Message::YouAreDead(YouAreDead {
                dest: s(msg, "dest"),
                ids: ClientIds::parse(msg),
            }),
            "abort_giveup" => Message::AbortGiveup(AbortGiveup {
                src: s(msg, "src"),
                dest: s(msg, "dest"),
                ids: ClientIds::parse(msg),
            }),
            "start_outdate" => Message::StartOutdate(StartOutdate {
                src: s(msg, "src"),
                res: s(msg, "dop_res"),
                dest: s(msg, "dest"),
                ids: ClientIds::parse(msg),
            }),
            "outdate_rc" => Message::OutdateRc(OutdateRc {
                // A return code, compared as ASCII digits.
                value: msg.get_str("dop_value").map(str::to_string),
                res: s(msg, "dop_res"),
                src: s(msg, "src"),
                dest: s(msg, "dest"),
                ids: ClientIds::parse(msg),
            }),
            "query-cstatus" => Message::QueryCstatus(QueryCstatus {
                dest: s(msg, "dest"),
                cn: s(msg, "cn"),
                from_id: s(msg, "from_id"),
            }),
            "respond-cstatus" => Message::RespondCstatus(RespondCstatus {
                dest: s(msg, "dest"),
                result: s(msg, "result"),
                cn: s(msg, "cn"),
                to_id: s(msg, "to_id"),
                cs: s(msg, "cs"),
            }),
            other => Message::Other(other.to_string()),
        })
    }

    /// The `t` of this message.
    pub fn type_name(&self) -> &str {
        match self {
            Message::Status(_) => "status",
            Message::Rexmit(_) => "NS_rexmit",
            Message::NakRexmit(_) => "NS_nak_rexmit",
            Message::AckMsg(_) => "NS_ackmsg",
            Message::PingEcho(_) => "NS_st",
            Message::ReqNodes(_) => "reqnodes",
            Message::RepNodes(_) => "repnodes",
            Message::IpRequest(_) => "ip-request",
            Message::IpRequestResp(_) => "ip-request-resp",
            Message::Starting => "starting",
            Message::Resource(_) => "resource",
            Message::AskResources(_) => "ask_resources",
            Message::HbTakeover(_) => "hb_takeover",
            Message::Shutdone(_) => "shutdone",
            Message::Stonith(_) => "stonith",
            Message::ClStat(_) => "hbapi-clstat",
            Message::NumPingNodes(_) => "num_ping_nodes",
            Message::YouAreDead(_) => "you_are_dead",
            Message::AbortGiveup(_) => "abort_giveup",
            Message::StartOutdate(_) => "start_outdate",
            Message::OutdateRc(_) => "outdate_rc",
            Message::QueryCstatus(_) => "query-cstatus",
            Message::RespondCstatus(_) => "respond-cstatus",
            Message::Other(t) => t,
        }
    }

    /// An unsequenced link-control message (`NS_*`): not numbered, not retransmitted, not
    /// for the upper layers.
    pub fn is_link_control(&self) -> bool {
        self.type_name().starts_with("NS_")
    }

    /// The type-specific fields, `t` first (`dest` first for `repnodes`, as 3.0.6 writes).
    pub fn emit(&self) -> Msg {
        let mut m = Msg::new();
        if let Message::RepNodes(r) = self {
            add(&mut m, "dest", &r.dest);
        }
        m.add_str("t", self.type_name());
        match self {
            Message::Status(x) => {
                add(&mut m, "st", &x.st);
                add(&mut m, "dt", &x.dt.map(hex));
                add(&mut m, "protocol", &x.protocol);
                add(&mut m, "hbcopies", &x.copies);
            }
            Message::Rexmit(x) => {
                add(&mut m, "dest", &x.dest);
                add(&mut m, "firstseq", &x.first.map(|v| v.to_string()));
                add(&mut m, "lastseq", &x.last.map(|v| v.to_string()));
            }
            Message::NakRexmit(x) => {
                add(&mut m, "firstseq", &x.first.map(hex));
                add(&mut m, "dest", &x.dest);
                add(&mut m, "info", &x.info);
            }
            Message::AckMsg(x) => {
                add(&mut m, "dest", &x.dest);
                add(&mut m, "ackseq", &x.ackseq.map(hex));
            }
            Message::PingEcho(x) => {
                add(&mut m, "st", &x.st);
                add(&mut m, "info", &x.info);
            }
            Message::ReqNodes(x) => add(&mut m, "dest", &x.dest),
            Message::RepNodes(x) => {
                add(&mut m, "nodelist", &x.nodelist);
                add(&mut m, "delnodelist", &x.delnodelist);
            }
            Message::IpRequest(x) => add(&mut m, "ipaddr", &x.ipaddr),
            Message::IpRequestResp(x) => {
                add(&mut m, "dest", &x.dest);
                add(&mut m, "ipaddr", &x.ipaddr);
                add(&mut m, "weown", &x.weown);
                add(&mut m, "ok", &x.ok);
            }
            Message::Starting | Message::Other(_) => {}
            Message::Resource(x) => {
                add(&mut m, "rsc_hold", &x.rsc_hold);
                add(&mut m, "rtype", &x.rtype);
                add(&mut m, "isstable", &x.isstable);
                add(&mut m, "info", &x.info);
                add(&mut m, "quick_start", &x.quick_start);
            }
            Message::AskResources(x) => {
                add(&mut m, "rsc_hold", &x.rsc_hold);
                add(&mut m, "info", &x.info);
            }
            Message::HbTakeover(x) => add(&mut m, "rsc_hold", &x.rsc_hold),
            Message::Shutdone(x) => add(&mut m, "st", &x.st),
            Message::Stonith(x) => {
                add(&mut m, "node", &x.node);
                add(&mut m, "result", &x.result);
            }
            Message::ClStat(x) => {
                // 3.0.6 writes the sender's ids between `st` and `src`, its generation last.
                add(&mut m, "st", &x.st);
                add(&mut m, "from_id", &x.ids.from_id);
                add(&mut m, "to_id", &x.ids.to_id);
                add(&mut m, "src", &x.src);
                add(&mut m, "info", &x.info);
                add(&mut m, "client_gen", &x.ids.client_gen);
            }
            Message::NumPingNodes(x) => {
                add(&mut m, "src", &x.src);
                add(&mut m, "num_ping", &x.num_ping);
                add(&mut m, "dest", &x.dest);
                x.ids.add_to(&mut m);
            }
            Message::YouAreDead(x) => {
                add(&mut m, "dest", &x.dest);
                x.ids.add_to(&mut m);
            }
            Message::AbortGiveup(x) => {
                add(&mut m, "src", &x.src);
                add(&mut m, "dest", &x.dest);
                x.ids.add_to(&mut m);
            }
            Message::StartOutdate(x) => {
                add(&mut m, "src", &x.src);
                add(&mut m, "dop_res", &x.res);
                add(&mut m, "dest", &x.dest);
                x.ids.add_to(&mut m);
            }
            Message::OutdateRc(x) => {
                add(&mut m, "dop_value", &x.value);
                add(&mut m, "dop_res", &x.res);
                add(&mut m, "src", &x.src);
                add(&mut m, "dest", &x.dest);
                x.ids.add_to(&mut m);
            }
            Message::QueryCstatus(x) => {
                add(&mut m, "dest", &x.dest);
                add(&mut m, "cn", &x.cn);
                add(&mut m, "from_id", &x.from_id);
            }
            Message::RespondCstatus(x) => {
                add(&mut m, "dest", &x.dest);
                add(&mut m, "result", &x.result);
                add(&mut m, "cn", &x.cn);
                add(&mut m, "to_id", &x.to_id);
                add(&mut m, "cs", &x.cs);
            }
        }
        m
    }
}

macro_rules! into_message {
    ($($t:ident),*) => {$(
        impl From<$t> for Message {
            fn from(x: $t) -> Message {
                Message::$t(x)
            }
        }
    )*};
}
into_message!(
    Status,
    Rexmit,
    NakRexmit,
    AckMsg,
    PingEcho,
    ReqNodes,
    RepNodes,
    IpRequest,
    IpRequestResp,
    Resource,
    AskResources,
    HbTakeover,
    Shutdone,
    Stonith,
    ClStat,
    NumPingNodes,
    YouAreDead,
    AbortGiveup,
    StartOutdate,
    OutdateRc,
    QueryCstatus,
    RespondCstatus
);

/// Shorthand for building a string field value.
pub fn some(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(m: &Msg) -> Vec<(String, String)> {
        m.fields
            .iter()
            .map(|f| {
                let name = String::from_utf8_lossy(&f.name).to_string();
                let value = m.get_str(&name).unwrap_or("<bin>").to_string();
                (name, value)
            })
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// Every typed message emits its fields in 3.0.6's order and parses back to itself.
    #[test]
    fn emit_writes_3_0_6_field_order_and_parse_reads_it_back() {
        let cases: Vec<(Message, Vec<(&str, &str)>)> = vec![
            (
                Status {
                    st: some("active"),
                    dt: Some(0x2710),
                    protocol: some("1"),
                    copies: None,
                }
                .into(),
                vec![
                    ("t", "status"),
                    ("st", "active"),
                    ("dt", "2710"),
                    ("protocol", "1"),
                ],
            ),
            (
                Rexmit {
                    dest: some("bob"),
                    first: Some(26),
                    last: Some(26),
                }
                .into(),
                vec![
                    ("t", "NS_rexmit"),
                    ("dest", "bob"),
                    ("firstseq", "26"),
                    ("lastseq", "26"),
                ],
            ),
            (
                NakRexmit {
                    first: Some(26),
                    dest: some("bob"),
                    info: some("seqno too low"),
                }
                .into(),
                vec![
                    ("t", "NS_nak_rexmit"),
                    ("firstseq", "1a"),
                    ("dest", "bob"),
                    ("info", "seqno too low"),
                ],
            ),
            (
                AckMsg {
                    dest: some("bob"),
                    ackseq: Some(0x1f),
                }
                .into(),
                vec![("t", "NS_ackmsg"), ("dest", "bob"), ("ackseq", "1f")],
            ),
            (
                PingEcho {
                    st: some("ping"),
                    info: some("ping_group"),
                }
                .into(),
                vec![("t", "NS_st"), ("st", "ping"), ("info", "ping_group")],
            ),
            (
                ReqNodes { dest: some("bob") }.into(),
                vec![("t", "reqnodes"), ("dest", "bob")],
            ),
            (
                RepNodes {
                    dest: some("bob"),
                    nodelist: some("alice bob"),
                    delnodelist: some(" "),
                }
                .into(),
                vec![
                    ("dest", "bob"),
                    ("t", "repnodes"),
                    ("nodelist", "alice bob"),
                    ("delnodelist", " "),
                ],
            ),
            (
                IpRequest {
                    ipaddr: some("IPaddr::10.0.0.1"),
                }
                .into(),
                vec![("t", "ip-request"), ("ipaddr", "IPaddr::10.0.0.1")],
            ),
            (
                IpRequestResp {
                    dest: some("alice"),
                    ipaddr: some("g1"),
                    weown: some("yes"),
                    ok: some("OK"),
                }
                .into(),
                vec![
                    ("t", "ip-request-resp"),
                    ("dest", "alice"),
                    ("ipaddr", "g1"),
                    ("weown", "yes"),
                    ("ok", "OK"),
                ],
            ),
            (Message::Starting, vec![("t", "starting")]),
            (
                Resource {
                    rsc_hold: some("local"),
                    rtype: some("full"),
                    isstable: some("1"),
                    info: some("standby"),
                    quick_start: None,
                }
                .into(),
                vec![
                    ("t", "resource"),
                    ("rsc_hold", "local"),
                    ("rtype", "full"),
                    ("isstable", "1"),
                    ("info", "standby"),
                ],
            ),
            (
                Resource {
                    rsc_hold: some("none"),
                    rtype: some("full"),
                    isstable: some("0"),
                    info: None,
                    quick_start: some("1"),
                }
                .into(),
                vec![
                    ("t", "resource"),
                    ("rsc_hold", "none"),
                    ("rtype", "full"),
                    ("isstable", "0"),
                    ("quick_start", "1"),
                ],
            ),
            (
                AskResources {
                    rsc_hold: some("all"),
                    info: some("me"),
                }
                .into(),
                vec![("t", "ask_resources"), ("rsc_hold", "all"), ("info", "me")],
            ),
            (
                HbTakeover {
                    rsc_hold: some("foreign"),
                }
                .into(),
                vec![("t", "hb_takeover"), ("rsc_hold", "foreign")],
            ),
            (
                Shutdone { st: some("dead") }.into(),
                vec![("t", "shutdone"), ("st", "dead")],
            ),
            (
                Stonith {
                    node: some("bob"),
                    result: some("n_stnth"),
                }
                .into(),
                vec![("t", "stonith"), ("node", "bob"), ("result", "n_stnth")],
            ),
            (
                ClStat {
                    st: some("join"),
                    src: some("bob"),
                    info: some("signon"),
                    ids: ClientIds::same_client("ipfail", 0),
                }
                .into(),
                vec![
                    ("t", "hbapi-clstat"),
                    ("st", "join"),
                    ("from_id", "ipfail"),
                    ("to_id", "ipfail"),
                    ("src", "bob"),
                    ("info", "signon"),
                    ("client_gen", "0"),
                ],
            ),
            (
                NumPingNodes {
                    src: some("bob"),
                    num_ping: some("2"),
                    dest: some("alice"),
                    ids: ClientIds::same_client("ipfail", 3),
                }
                .into(),
                vec![
                    ("t", "num_ping_nodes"),
                    ("src", "bob"),
                    ("num_ping", "2"),
                    ("dest", "alice"),
                    ("from_id", "ipfail"),
                    ("to_id", "ipfail"),
                    ("client_gen", "3"),
                ],
            ),
            (
                YouAreDead {
                    dest: some("alice"),
                    ids: ClientIds::default(),
                }
                .into(),
                vec![("t", "you_are_dead"), ("dest", "alice")],
            ),
            (
                AbortGiveup {
                    src: some("bob"),
                    dest: some("alice"),
                    ids: ClientIds::same_client("ipfail", 0),
                }
                .into(),
                vec![
                    ("t", "abort_giveup"),
                    ("src", "bob"),
                    ("dest", "alice"),
                    ("from_id", "ipfail"),
                    ("to_id", "ipfail"),
                    ("client_gen", "0"),
                ],
            ),
            (
                StartOutdate {
                    src: some("alice"),
                    res: some("r0"),
                    dest: some("bob"),
                    ids: ClientIds::same_client("dopd", 0),
                }
                .into(),
                vec![
                    ("t", "start_outdate"),
                    ("src", "alice"),
                    ("dop_res", "r0"),
                    ("dest", "bob"),
                    ("from_id", "dopd"),
                    ("to_id", "dopd"),
                    ("client_gen", "0"),
                ],
            ),
            (
                OutdateRc {
                    value: some("4"),
                    res: some("r0"),
                    src: some("bob"),
                    dest: some("alice"),
                    ids: ClientIds::same_client("dopd", 0),
                }
                .into(),
                vec![
                    ("t", "outdate_rc"),
                    ("dop_value", "4"),
                    ("dop_res", "r0"),
                    ("src", "bob"),
                    ("dest", "alice"),
                    ("from_id", "dopd"),
                    ("to_id", "dopd"),
                    ("client_gen", "0"),
                ],
            ),
            (
                QueryCstatus {
                    dest: some("bob"),
                    cn: some("ipfail"),
                    from_id: some("cl_status"),
                }
                .into(),
                vec![
                    ("t", "query-cstatus"),
                    ("dest", "bob"),
                    ("cn", "ipfail"),
                    ("from_id", "cl_status"),
                ],
            ),
            (
                RespondCstatus {
                    dest: some("alice"),
                    result: some("OK"),
                    cn: some("ipfail"),
                    to_id: some("cl_status"),
                    cs: some("online"),
                }
                .into(),
                vec![
                    ("t", "respond-cstatus"),
                    ("dest", "alice"),
                    ("result", "OK"),
                    ("cn", "ipfail"),
                    ("to_id", "cl_status"),
                    ("cs", "online"),
                ],
            ),
            (
                Message::Other("mgmtd_event".into()),
                vec![("t", "mgmtd_event")],
            ),
        ];
        for (msg, want) in cases {
            let emitted = msg.emit();
            assert_eq!(fields(&emitted), pairs(&want), "{msg:?}");
            assert_eq!(Message::parse(&emitted), Some(msg.clone()), "{msg:?}");
            assert_eq!(
                msg.is_link_control(),
                msg.type_name().starts_with("NS_"),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn client_messages_read_as_the_api_does() {
        let n = |v: &str| NumPingNodes {
            num_ping: some(v),
            ..Default::default()
        };
        assert_eq!(n("12").count(), 12);
        assert_eq!(n(" 3x").count(), 3, "atoi stops at the first non-digit");
        assert_eq!(n("-2").count(), 0);
        assert_eq!(n("junk").count(), 0);
        assert_eq!(NumPingNodes::default().count(), 0);
        assert_eq!(atoi("99999999999999999999999"), i64::MAX);

        let ids = ClientIds::same_client("ipfail", 0);
        assert!(ids.is_for("ipfail"));
        assert!(!ids.is_for("dopd"));
        assert!(
            ClientIds::default().is_for("dopd"),
            "no to_id: for every client"
        );

        let st = |v: &str| ClStat {
            st: some(v),
            ..Default::default()
        };
        assert_eq!(st("join").joined(), Some(true));
        assert_eq!(st("leave").joined(), Some(false));
        assert_eq!(st("Join").joined(), None);

        let ask = ClientAskResources {
            rsc_hold: some("all"),
            src: some("alice"),
            info: some("me"),
            ids: ClientIds::same_client("ipfail", 0),
        };
        let m = ask.emit();
        assert_eq!(
            fields(&m),
            pairs(&[
                ("t", "ask_resources"),
                ("rsc_hold", "all"),
                ("src", "alice"),
                ("info", "me"),
                ("from_id", "ipfail"),
                ("to_id", "ipfail"),
                ("client_gen", "0"),
            ])
        );
        assert_eq!(ClientAskResources::parse(&m), Some(ask));
        // Heartbeat itself reads it as the standby request it is.
        assert_eq!(
            Message::parse(&m),
            Some(Message::AskResources(AskResources {
                rsc_hold: some("all"),
                info: some("me"),
            }))
        );

        // Non-UTF-8 values survive a parse and an emit.
        let mut m = Msg::new();
        m.add_str("t", "start_outdate")
            .add("dop_res", super::super::Value::Str(b"r\xe9s".to_vec()));
        let Some(Message::StartOutdate(start)) = Message::parse(&m) else {
            panic!("a start_outdate");
        };
        assert_eq!(
            Message::from(start).emit().get("dop_res"),
            Some(&super::super::Value::Str(b"r\xe9s".to_vec()))
        );
    }

    #[test]
    fn parsing_is_lenient_and_types_are_exact() {
        let mut m = Msg::new();
        assert_eq!(Message::parse(&m), None, "no t, no message");
        m.add_str("t", "NS_rexmit")
            .add_str("firstseq", "1a")
            .add_str("lastseq", "7");
        // Retransmission requests are decimal: `1a` is malformed.
        assert_eq!(
            Message::parse(&m),
            Some(Message::Rexmit(Rexmit {
                dest: None,
                first: None,
                last: Some(7)
            }))
        );
        let mut m = Msg::new();
        m.add_str("t", "Status").add_str("st", "active");
        assert_eq!(Message::parse(&m), Some(Message::Other("Status".into())));
        let mut m = Msg::new();
        m.add_str("t", "resource").add_str("isstable", " 1 ");
        let Some(Message::Resource(r)) = Message::parse(&m) else {
            panic!("resource");
        };
        assert_eq!(
            (r.stable(), r.is_full(), r.rsc_hold),
            (Some(true), false, None)
        );
        let mut m = Msg::new();
        m.add_str("t", "ip-request-resp").add_str("ok", "ok");
        let Some(Message::IpRequestResp(r)) = Message::parse(&m) else {
            panic!("ip-request-resp");
        };
        assert!(!r.granted(), "only the exact word OK grants");
        assert_eq!(parse_hex("ff"), Some(255));
        assert_eq!(parse_hex(""), None);
        assert_eq!(parse_hex("10000000000000000"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(hex(255), "ff");
    }
}
