//! Client status between nodes: a client on a peer asks (through its daemon) whether a client
//! runs here, `t=query-cstatus cn=<client> from_id=<asker>` addressed to us; 3.0.6's daemon
//! answers `t=respond-cstatus dest=<peer> result=OK cn=<client> to_id=<asker> cs=online|offline`
//! (fields in that order), `online` when that client is signed on. Here the clients are the
//! built-in ones. The peer's own clients sign on and off with `t=hbapi-clstat st=join|leave
//! from_id=<client>`; [`Roster`] keeps what the peers said, for `cl_status clientstatus`.

use crate::wire::messages::{some, Message, QueryCstatus, RespondCstatus};
use crate::wire::Msg;

/// 3.0.6's `API_OK`.
const API_OK: &str = "OK";

/// A peer's question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The client asked about (`cn`).
    pub client: String,
    /// The asking client (`from_id`), to which the answer is addressed (`to_id`).
    pub asker: String,
}

impl Query {
    /// None unless `t=query-cstatus` with both `cn` and `from_id` (3.0.6 ignores it then).
    pub fn parse(m: &Msg) -> Option<Query> {
        let Some(Message::QueryCstatus(q)) = Message::parse(m) else {
            return None;
        };
        Some(Query {
            client: q.cn?,
            asker: q.from_id?,
        })
    }

    pub fn emit(&self, dest: &str) -> Msg {
        Message::from(QueryCstatus {
            dest: some(dest),
            cn: some(&self.client),
            from_id: some(&self.asker),
        })
        .emit()
    }

    /// The answer to `peer`, as 3.0.6 writes it.
    pub fn answer(&self, peer: &str, online: bool) -> Msg {
        Message::from(RespondCstatus {
            dest: some(peer),
            result: some(API_OK),
            cn: some(&self.client),
            to_id: some(&self.asker),
            cs: some(if online { "online" } else { "offline" }),
        })
        .emit()
    }
}

/// The clients each peer said are signed on (`hbapi-clstat`), in the order first heard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    entries: Vec<(String, String, bool)>,
}

impl Roster {
    /// Note a peer's `hbapi-clstat` (anything else is ignored).
    pub fn message(&mut self, from: &str, m: &Msg) {
        let Some(Message::ClStat(stat)) = Message::parse(m) else {
            return;
        };
        let (Some(online), Some(client)) = (stat.joined(), stat.ids.from_id) else {
            return;
        };
        match self
            .entries
            .iter_mut()
            .find(|(n, c, _)| n == from && *c == client)
        {
            Some(e) => e.2 = online,
            None => self.entries.push((from.to_string(), client, online)),
        }
    }

    /// A peer died or restarted: what it said no longer holds.
    pub fn forget(&mut self, node: &str) {
        self.entries.retain(|(n, _, _)| n != node);
    }

    /// (node, client, online) for every client a peer told us about.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, bool)> {
        self.entries
            .iter()
            .map(|(n, c, o)| (n.as_str(), c.as_str(), *o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(m: &Msg) -> Vec<(String, String)> {
        m.fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(&f.name).into_owned(),
                    m.get_text(&String::from_utf8_lossy(&f.name))
                        .unwrap_or_default()
                        .into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_query_is_answered_in_3_0_6_field_order() {
        let q = Query {
            client: "ipfail".into(),
            asker: "ipfail".into(),
        };
        let parsed = Query::parse(&q.emit("bob")).expect("parses");
        assert_eq!(parsed, q);
        let a = parsed.answer("alice", true);
        let pairs: Vec<(&str, &str)> = [
            ("t", "respond-cstatus"),
            ("dest", "alice"),
            ("result", "OK"),
            ("cn", "ipfail"),
            ("to_id", "ipfail"),
            ("cs", "online"),
        ]
        .to_vec();
        let got = fields(&a);
        let got: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, pairs);
        assert_eq!(q.answer("alice", false).get_str("cs"), Some("offline"));
        // Without cn or from_id there is nothing to answer.
        let mut m = Msg::new();
        m.add_str("t", "query-cstatus").add_str("cn", "ipfail");
        assert_eq!(Query::parse(&m), None);
    }

    #[test]
    fn the_roster_follows_sign_on_and_off() {
        let clstat = |st: &str, id: &str| {
            let mut m = Msg::new();
            m.add_str("t", "hbapi-clstat")
                .add_str("st", st)
                .add_str("from_id", id)
                .add_str("to_id", id);
            m
        };
        let mut r = Roster::default();
        r.message("alice", &clstat("join", "ipfail"));
        r.message("alice", &clstat("join", "dopd"));
        r.message("alice", &clstat("leave", "ipfail"));
        r.message("alice", &clstat("bogus", "ccm"));
        let got: Vec<_> = r.entries().collect();
        assert_eq!(got, [("alice", "ipfail", false), ("alice", "dopd", true)]);
        r.forget("alice");
        assert_eq!(r.entries().count(), 0);
    }
}
