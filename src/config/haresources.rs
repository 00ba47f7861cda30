//! `haresources`: one resource group per line, first word the preferred node.
//!
//! Grammar (admin.md §3, resources.md §7.1):
//!
//! * `#` starts a comment anywhere on a line; comments are removed first;
//! * a line whose text (after the comment is removed, trailing blanks ignored) ends in `\`
//!   continues on the next line;
//! * blanks and tabs separate words; blank lines are skipped;
//! * `<node> <resource> [<resource> ...]`: the node is matched case-insensitively against the
//!   declared nodes (`Bad nodename in <file> [carol]` otherwise);
//! * a resource is `script` or `script::arg1::arg2...`; a word that looks like a dotted IPv4
//!   address (starts with a digit and has three dots each followed by a digit, e.g.
//!   `10.0.0.1` or `10.0.0.1/24/eth0`) means `IPaddr::<word>`;
//! * the first resource is the group's key; keys must be unique (3.0.6's helpers merge groups
//!   that share a key, so we refuse duplicates at load).

use std::collections::BTreeMap;
use std::path::Path;

use super::{Diagnostic, Severity};

/// One resource: a script name and its `::`-separated arguments (`IPaddr::10.0.0.1/24`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub script: String,
    pub args: Vec<String>,
    /// The word as written in haresources (`10.0.0.1` for an implied IPaddr).
    pub spec: String,
}

/// One haresources line. Its key (first resource, as written) names the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGroup {
    pub line: usize,
    /// Preferred node, lowercased.
    pub node: String,
    pub resources: Vec<Resource>,
}

impl ResourceGroup {
    pub fn key(&self) -> &str {
        // `parse` never returns a group without resources.
        &self.resources[0].spec
    }
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

/// The shell pattern `[0-9]*.[0-9]*.[0-9]*.[0-9]*`: a digit first, then three dots each
/// directly followed by a digit, anything in between.
pub fn looks_like_ipv4(word: &str) -> bool {
    let bytes = word.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let mut found = 0;
    let mut i = 1;
    while i + 1 < bytes.len() && found < 3 {
        if bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            found += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    found == 3
}

/// One resource word. `Err` carries the reason it is unusable.
pub fn parse_resource(word: &str) -> Result<Resource, String> {
    if word.contains("::") {
        let mut parts = word.split("::");
        let script = parts.next().unwrap_or_default();
        if script.is_empty() {
            return Err(format!("resource [{word}] has no script name before '::'"));
        }
        // Arguments are passed through the shell's word splitting: empty ones vanish.
        let args = parts
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Resource {
            script: script.to_string(),
            args,
            spec: word.to_string(),
        })
    } else if looks_like_ipv4(word) {
        Ok(Resource {
            script: "IPaddr".to_string(),
            args: vec![word.to_string()],
            spec: word.to_string(),
        })
    } else {
        Ok(Resource {
            script: word.to_string(),
            args: Vec::new(),
            spec: word.to_string(),
        })
    }
}

/// Parse haresources. `nodes` are the declared (lowercased) node names.
pub fn parse(
    text: &str,
    path: &Path,
    nodes: &[String],
) -> Result<Vec<ResourceGroup>, Vec<Diagnostic>> {
    match parse_report(text, path, nodes) {
        (Some(groups), _) => Ok(groups),
        (None, diags) => Err(diags),
    }
}

/// Like [`parse`], but also returns the warnings of a file that parsed cleanly (for
/// `heartbeat --check`). The groups are `Some` exactly when there is no error.
pub fn parse_report(
    text: &str,
    path: &Path,
    nodes: &[String],
) -> (Option<Vec<ResourceGroup>>, Vec<Diagnostic>) {
    let file = path.display();
    let mut diags = Vec::new();
    let mut groups: Vec<ResourceGroup> = Vec::new();
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();

    // Logical lines: (first physical line number, joined text).
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (idx, raw) in text.split('\n').enumerate() {
        let line = idx + 1;
        let uncommented = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        let trimmed = uncommented.trim_end_matches(is_blank);
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (trimmed, false),
        };
        let (start, mut acc) = pending.take().unwrap_or((line, String::new()));
        acc.push(' ');
        acc.push_str(body);
        if continues {
            pending = Some((start, acc));
        } else {
            logical.push((start, acc));
        }
    }
    if let Some((start, acc)) = pending {
        diags.push(Diagnostic::warning(
            path,
            start,
            "the last line ends with a continuation backslash but nothing follows",
        ));
        logical.push((start, acc));
    }

    for (line, text) in logical {
        let mut words = text.split(is_blank).filter(|w| !w.is_empty());
        let Some(node_word) = words.next() else {
            continue;
        };
        // Names and keys are compared with the same bytes from packets: each in its own
        // canonical form, whatever else the file holds (`bytes::canonical`).
        let node = super::bytes::canonical(node_word).to_ascii_lowercase();
        let mut line_ok = true;
        if !nodes.contains(&node) {
            diags.push(Diagnostic::error(
                path,
                line,
                format!("Bad nodename in {file} [{node_word}]"),
            ));
            line_ok = false;
        }
        let mut resources = Vec::new();
        for word in words {
            match parse_resource(&super::bytes::canonical(word)) {
                Ok(r) => resources.push(r),
                Err(why) => {
                    diags.push(Diagnostic::error(path, line, why));
                    line_ok = false;
                }
            }
        }
        if resources.is_empty() {
            if line_ok {
                diags.push(Diagnostic::warning(
                    path,
                    line,
                    format!(
                        "node [{node_word}] has no resources on this line; the line is ignored"
                    ),
                ));
            }
            continue;
        }
        // A key in any bytes (Latin-1, EUC-KR) names the group on the wire as they are.
        let key = resources[0].spec.clone();
        if let Some(first) = keys.get(&key) {
            diags.push(Diagnostic::error(
                path,
                line,
                format!(
                    "Duplicate resource group key [{key}] in {file}: it already starts the group \
                     at line {first}; the first resource of every line must be unique \
                     (Heartbeat 3.0.6 would merge both groups)"
                ),
            ));
            continue;
        }
        keys.insert(key, line);
        if line_ok {
            groups.push(ResourceGroup {
                line,
                node,
                resources,
            });
        }
    }

    // The 3.0.6 helpers find a group by its key anywhere on a line: a key that also appears
    // inside another group makes them act on both lines.
    for g in &groups {
        for h in &groups {
            if g.line == h.line {
                continue;
            }
            if h.resources.iter().skip(1).any(|r| r.spec == g.key()) {
                diags.push(Diagnostic::warning(
                    path,
                    h.line,
                    format!(
                        "resource [{}] is also the key of the group at line {}; the Heartbeat \
                         3.0.6 helper scripts would treat both lines as one group",
                        g.key(),
                        g.line
                    ),
                ));
            }
        }
    }
    diags.sort_by_key(|d| d.line);

    if diags.iter().any(|d| d.severity == Severity::Error) {
        (None, diags)
    } else {
        (Some(groups), diags)
    }
}

/// The messages for a haresources file that cannot be read, worded as 3.0.6. The sample is
/// suggested only when there is no file at all: a file that exists is the user's.
pub fn cannot_open(path: &Path, why: super::Missing<'_>) -> Vec<Diagnostic> {
    let file = path.display();
    match why {
        super::Missing::NotFound => vec![
            Diagnostic::error(path, 0, format!("Cannot open resources file [{file}]")),
            Diagnostic::info(
                path,
                0,
                format!("An annotated sample {file} file is provided in the documentation."),
            ),
            Diagnostic::info(
                path,
                0,
                format!("Please copy it to {file}, read it, customize it, and try again."),
            ),
        ],
        super::Missing::Unreadable(reason) => vec![Diagnostic::error(
            path,
            0,
            format!("Cannot open resources file [{file}]: {reason}"),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/etc/ha.d//haresources";

    fn nodes() -> Vec<String> {
        vec!["alice".to_string(), "bob".to_string()]
    }

    fn ok(text: &str) -> Vec<ResourceGroup> {
        match parse(text, Path::new(P), &nodes()) {
            Ok(g) => g,
            Err(d) => panic!("unexpected errors: {d:?}"),
        }
    }

    fn errors(text: &str) -> Vec<(usize, String)> {
        let (groups, diags) = parse_report(text, Path::new(P), &nodes());
        assert!(groups.is_none(), "expected a failure for {text:?}");
        diags
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| (d.line, d.message))
            .collect()
    }

    fn r(script: &str, args: &[&str], spec: &str) -> Resource {
        Resource {
            script: script.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            spec: spec.to_string(),
        }
    }

    #[test]
    fn the_lab_file() {
        let g = ok("alice Marker::svcA\nbob Marker::svcB\n");
        assert_eq!(g.len(), 2);
        assert_eq!(
            g[0],
            ResourceGroup {
                line: 1,
                node: "alice".into(),
                resources: vec![r("Marker", &["svcA"], "Marker::svcA")]
            }
        );
        assert_eq!(g[1].node, "bob");
        assert_eq!(g[1].key(), "Marker::svcB");
    }

    #[test]
    fn the_spec_example() {
        let text = "# node  resource [resource ...]          (one group per line)\n\
                    alice   10.0.0.10 Filesystem::/dev/sdb1::/data::ext3 httpd\n\
                    bob     IPaddr::10.0.0.11/24/eth0 \\\n        mysql\n";
        let g = ok(text);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].line, 2);
        assert_eq!(
            g[0].resources,
            vec![
                r("IPaddr", &["10.0.0.10"], "10.0.0.10"),
                r(
                    "Filesystem",
                    &["/dev/sdb1", "/data", "ext3"],
                    "Filesystem::/dev/sdb1::/data::ext3"
                ),
                r("httpd", &[], "httpd"),
            ]
        );
        assert_eq!(g[1].line, 3);
        assert_eq!(
            g[1].resources,
            vec![
                r(
                    "IPaddr",
                    &["10.0.0.11/24/eth0"],
                    "IPaddr::10.0.0.11/24/eth0"
                ),
                r("mysql", &[], "mysql")
            ]
        );
    }

    #[test]
    fn implied_ipaddr_with_mask_and_interface() {
        let g = ok("alice 10.9.9.10/24/eth0/10.9.9.255\n");
        assert_eq!(
            g[0].resources[0],
            r(
                "IPaddr",
                &["10.9.9.10/24/eth0/10.9.9.255"],
                "10.9.9.10/24/eth0/10.9.9.255"
            )
        );
    }

    #[test]
    fn ipv4_detection() {
        assert!(looks_like_ipv4("10.0.0.1"));
        assert!(looks_like_ipv4("1.2.3.4/24"));
        assert!(looks_like_ipv4("192.168.1.300"));
        assert!(!looks_like_ipv4("10.0.0"));
        assert!(!looks_like_ipv4("a.1.2.3"));
        assert!(!looks_like_ipv4("1..2.3"));
        assert!(!looks_like_ipv4("1.a.b.c"));
        assert!(!looks_like_ipv4(""));
        assert!(!looks_like_ipv4("httpd"));
    }

    #[test]
    fn script_arguments() {
        let g = ok("alice Fake::a1::a2::a3 plain\n");
        assert_eq!(
            g[0].resources[0],
            r("Fake", &["a1", "a2", "a3"], "Fake::a1::a2::a3")
        );
        let g = ok("alice Fake::::a2:: x\n");
        assert_eq!(g[0].resources[0].args, vec!["a2".to_string()]);
    }

    #[test]
    fn comments_anywhere_and_crlf() {
        let g = ok("  # only a comment\r\n\r\nalice A::1 B # C::3\r\n\tbob\tD  \r\n");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].resources.len(), 2);
        assert_eq!(g[1].line, 4);
        assert_eq!(g[1].key(), "D");
    }

    #[test]
    fn continuation_lines() {
        let g = ok("alice A \\\n B \\\n C\nbob D\\\nE\n");
        assert_eq!(g.len(), 2);
        assert_eq!(
            g[0].resources
                .iter()
                .map(|x| x.spec.as_str())
                .collect::<Vec<_>>(),
            vec!["A", "B", "C"]
        );
        assert_eq!(g[1].line, 4);
        assert_eq!(g[1].resources.len(), 2);
        // Comment removed before joining.
        let g = ok("alice A \\ # comment\n B\n");
        assert_eq!(g[0].resources.len(), 2);
    }

    #[test]
    fn node_case_insensitive() {
        let g = ok("ALICE A\nBob B\n");
        assert_eq!(g[0].node, "alice");
        assert_eq!(g[1].node, "bob");
    }

    #[test]
    fn bad_nodename() {
        let e = errors("alice A\ncarol B\n");
        assert_eq!(
            e,
            vec![(
                2,
                "Bad nodename in /etc/ha.d//haresources [carol]".to_string()
            )]
        );
    }

    #[test]
    fn duplicate_key_rejected() {
        let e = errors("alice Marker::x1 A\nbob Marker::x1 B\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 2);
        assert!(e[0].1.contains("Duplicate resource group key [Marker::x1]"));
        assert!(e[0].1.contains("line 1"));
    }

    #[test]
    fn all_problems_reported() {
        let e = errors("carol A\nalice ::x\nalice B\nbob B\ndave C\n");
        assert_eq!(e.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2, 4, 5]);
    }

    #[test]
    fn key_inside_another_group_warns() {
        let (g, d) = parse_report("alice A X\nbob B A\n", Path::new(P), &nodes());
        assert_eq!(g.map(|g| g.len()), Some(2));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].severity, Severity::Warning);
        assert_eq!(d[0].line, 2);
    }

    #[test]
    fn node_without_resources_is_skipped_with_warning() {
        let (g, d) = parse_report("alice\nbob B\n", Path::new(P), &nodes());
        assert_eq!(g.map(|g| g.len()), Some(1));
        assert_eq!(d[0].severity, Severity::Warning);
    }

    #[test]
    fn empty_file_has_no_groups() {
        assert!(ok("").is_empty());
        assert!(ok("# nothing\n\n").is_empty());
    }

    #[test]
    fn cannot_open_wording() {
        let d = cannot_open(Path::new(P), crate::config::Missing::NotFound);
        assert_eq!(
            d[0].message,
            "Cannot open resources file [/etc/ha.d//haresources]"
        );
        assert_eq!(d[0].severity, Severity::Error);
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn an_existing_unreadable_file_is_never_to_be_replaced_by_the_sample() {
        let d = cannot_open(
            Path::new(P),
            crate::config::Missing::Unreadable("Permission denied (os error 13)"),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].message,
            "Cannot open resources file [/etc/ha.d//haresources]: Permission denied (os error 13)"
        );
        assert!(!d.iter().any(|d| d.message.contains("copy")));
    }

    fn decoded(bytes: &[u8]) -> String {
        crate::config::bytes::decode(bytes)
    }

    #[test]
    fn legacy_encoded_comments_and_arguments_pass_byte_for_byte() {
        // EUC-KR comment, Latin-1 argument, Shift-JIS argument whose trail byte is a backslash.
        let text = decoded(
            b"# \xb5\xce \xb3\xeb\xb5\xe5\nalice Marker::svcA Filesystem::/dev/sdb1::/d\xe9p\xf4t::ext3 \
              Marker::\x95\x5c::x\n",
        );
        let g = ok(&text);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].line, 2);
        let fs = &g[0].resources[1];
        assert_eq!(fs.script, "Filesystem");
        assert_eq!(
            crate::config::bytes::encode(&fs.args[1]),
            b"/d\xe9p\xf4t".to_vec()
        );
        assert_eq!(
            crate::config::bytes::encode(&g[0].resources[2].args[0]),
            b"\x95\x5c".to_vec()
        );
    }

    #[test]
    fn a_shift_jis_character_ending_in_0x5c_at_the_end_of_a_line_continues_it_as_in_3_0_6() {
        // 3.0.6 reads bytes: the trail byte 0x5C of "表" is a backslash to it too.
        let g = ok(&decoded(b"alice Marker::a Marker::\x95\x5c\n Marker::b\n"));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].resources.len(), 3);
        assert_eq!(
            crate::config::bytes::encode(&g[0].resources[1].args[0]),
            b"\x95"
        );
    }

    #[test]
    fn a_group_key_and_node_in_any_bytes_are_read_as_3_0_6_reads_them() {
        // Latin-1 key and node name; and in the same (non-UTF-8) file a UTF-8 key, which
        // must equal the same bytes arriving alone in a packet.
        let nodes = vec![
            "alice".to_string(),
            crate::config::bytes::decode(b"caf\xe9"),
        ];
        let text = decoded(b"alice Marker::caf\xe9 Marker::b\nCAF\xe9 Marker::\xc3\xa9t\xc3\xa9\n");
        let (g, diags) = parse_report(&text, Path::new(P), &nodes);
        assert!(diags.is_empty(), "{diags:?}");
        let g = g.expect("groups");
        assert_eq!(g.len(), 2);
        assert_eq!(crate::config::bytes::encode(g[0].key()), b"Marker::caf\xe9");
        assert_eq!(g[1].node, nodes[1]);
        assert_eq!(g[1].key(), "Marker::été");
        // A duplicate legacy key is shown escaped, never garbled.
        let text = decoded(b"alice Marker::caf\xe9\nalice Marker::caf\xe9\n");
        let (_, diags) = parse_report(&text, Path::new(P), &nodes);
        let shown = diags[0].to_string();
        assert!(shown.contains("[Marker::caf\\xe9]"), "{shown}");
    }
}
