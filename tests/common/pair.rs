//! The two-node set-up most tests start from: alice and bob, one `Marker` group each
//! (`alice Marker::svcA::<marker>`, `bob Marker::svcB::<marker>` unless a test gives its own
//! haresources), the same ha.cf, authkeys and haresources on both, on loopback (ours only,
//! 127.0.0.1 and 127.0.0.2 on a free port) or in a pair of network namespaces.
//!
//! ```ignore
//! let pair = MarkerPair::loopback("rsc-legacy").extra(&["crm off"]).build();
//! let mut alice = pair.start_ours(0);
//! ```

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::{
    free_udp_port, install_resource_scripts, ucast_lines, Auth, AuthMethod, HaCf, NetnsPair,
    NodeDir, OurNode, RealNode, TestDir,
};

/// The loopback addresses of alice and bob.
pub const LOOPBACK: [&str; 2] = ["127.0.0.1", "127.0.0.2"];

enum Where {
    Loopback,
    Netns { prefix: String, net: String },
}

/// What a test wants of its pair; `build` writes the files.
pub struct PairBuilder {
    label: String,
    place: Where,
    extra: Vec<String>,
    auth: AuthMethod,
    haresources: Option<String>,
    real: [bool; 2],
}

/// Two node directories with their configuration written, and where they run.
pub struct MarkerPair {
    pub tmp: TestDir,
    /// The directory the Marker resource keeps its `<node>/<svc>` files in.
    pub marker: PathBuf,
    /// alice, bob.
    pub dirs: [NodeDir; 2],
    /// The namespaces, for a pair built with [`MarkerPair::netns`].
    pub ns: Option<NetnsPair>,
}

impl MarkerPair {
    /// Two of ours on loopback.
    pub fn loopback(label: &str) -> PairBuilder {
        PairBuilder::new(label, Where::Loopback)
    }

    /// A pair in two network namespaces `<prefix>a`/`<prefix>b` on `<net>.0/24`.
    pub fn netns(label: &str, prefix: &str, net: &str) -> PairBuilder {
        let place = Where::Netns {
            prefix: prefix.to_string(),
            net: net.to_string(),
        };
        PairBuilder::new(label, place)
    }

    /// Start our daemon as alice (0) or bob (1).
    pub fn start_ours(&self, who: usize) -> OurNode {
        match &self.ns {
            Some(ns) => OurNode::start(&self.dirs[who], Some(&self.ns_of(ns, who)), None),
            None => OurNode::start(&self.dirs[who], None, Some(LOOPBACK[who])),
        }
    }

    /// Start the real 3.0.6 as alice (0) or bob (1); only in namespaces.
    pub fn start_real(&self, who: usize) -> RealNode {
        let ns = self.ns.as_ref().expect("a real node runs in a namespace");
        RealNode::start(&self.dirs[who], &self.ns_of(ns, who))
    }

    fn ns_of(&self, ns: &NetnsPair, who: usize) -> String {
        if who == 0 {
            ns.ns_a()
        } else {
            ns.ns_b()
        }
    }
}

impl PairBuilder {
    fn new(label: &str, place: Where) -> PairBuilder {
        PairBuilder {
            label: label.to_string(),
            place,
            extra: Vec::new(),
            auth: AuthMethod::Sha1,
            haresources: None,
            real: [false; 2],
        }
    }

    /// More ha.cf lines (`crm off`, `auto_failback on`, ...).
    pub fn extra(mut self, lines: &[&str]) -> PairBuilder {
        self.extra.extend(lines.iter().map(|l| l.to_string()));
        self
    }

    pub fn auth(mut self, method: AuthMethod) -> PairBuilder {
        self.auth = method;
        self
    }

    /// Our own haresources; `{m}` stands for the marker directory.
    pub fn haresources(mut self, text: &str) -> PairBuilder {
        self.haresources = Some(text.to_string());
        self
    }

    /// alice (0) or bob (1) will be the real 3.0.6: it gets Debian's resource.d plus Marker.
    pub fn real(mut self, who: usize) -> PairBuilder {
        self.real[who] = true;
        self
    }

    pub fn build(self) -> MarkerPair {
        let tmp = TestDir::new(&self.label);
        let marker = tmp.path.join("marker");
        fs::create_dir_all(&marker).expect("marker dir");
        let (mut hacf, ns) = match &self.place {
            Where::Loopback => {
                let addrs = LOOPBACK.map(|a| a.parse::<Ipv4Addr>().expect("addr"));
                let media = ucast_lines("lo", &LOOPBACK);
                let hacf = HaCf::new(&["alice", "bob"], &media).udpport(free_udp_port(&addrs));
                (hacf, None)
            }
            Where::Netns { prefix, net } => {
                let ns = NetnsPair::new(prefix, net);
                let media = ucast_lines("hb0", &[&ns.addr_a(), &ns.addr_b()]);
                (HaCf::new(&["alice", "bob"], &media), Some(ns))
            }
        };
        hacf.extra = self.extra;
        let haresources = self
            .haresources
            .as_deref()
            .unwrap_or("alice Marker::svcA::{m}\nbob Marker::svcB::{m}\n")
            .replace("{m}", &marker.display().to_string());
        let dirs = [tmp.node("alice"), tmp.node("bob")];
        for (d, real) in dirs.iter().zip(self.real) {
            d.write_config(&hacf, &Auth::lab(self.auth), &haresources);
            install_resource_scripts(d, real);
        }
        MarkerPair {
            tmp,
            marker,
            dirs,
            ns,
        }
    }
}
