//! The checkers. Each takes the whole trace and returns what broke its property, worded for a
//! report; none stops at the first violation.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use totem_wire::exec::cpg::escape_name;

use crate::model::{Client, ClientId, Fact, Member, Message, Trace};
use crate::{Check, Configurations, Rules, SelfDeliveryWindow, Violation};

type MemberSet = BTreeSet<(u32, u32)>;

/// Runs one check.
pub fn check(trace: &Trace, rules: &Rules, which: Check) -> Vec<Violation> {
    match which {
        Check::AgreedOrder => agreed_order(trace),
        Check::VirtualSynchrony => virtual_synchrony(trace, rules)
            .iter()
            .map(|d| d.violation(trace))
            .collect(),
        Check::Fifo => fifo(trace, rules),
        Check::SelfDelivery => self_delivery(trace, rules),
        Check::NoDuplicates => no_duplicates(trace),
        Check::NoInvented => no_invented(trace),
        Check::ConfchgConsistency => confchg_consistency(trace),
        Check::ConfchgReasons => confchg_reasons(trace),
        Check::TotemRings => totem_rings(trace),
    }
}

fn violation(check: Check, detail: String) -> Violation {
    Violation {
        check,
        detail,
        client: None,
    }
}

/// A delivery as the checkers index it.
struct Dlv<'a> {
    message: &'a Message,
    /// How many confchgs the receiver had seen before it: the CPG view it came in.
    view: usize,
    ring: Option<&'a str>,
}

/// Each client's deliveries, in order.
fn deliveries(trace: &Trace) -> Vec<Vec<Dlv<'_>>> {
    let mut out: Vec<Vec<Dlv<'_>>> = trace.clients.iter().map(|_| Vec::new()).collect();
    let mut views = vec![0; trace.clients.len()];
    for e in &trace.events {
        match &e.fact {
            Fact::Confchg { client, .. } => views[*client] += 1,
            Fact::Delivered {
                client,
                message,
                ring,
                ..
            } => out[*client].push(Dlv {
                message,
                view: views[*client],
                ring: ring.as_deref(),
            }),
            _ => {}
        }
    }
    out
}

/// What was sent: per sender label, seq -> (sender, key, length, digest).
type SentNumbered<'a> =
    BTreeMap<&'a str, BTreeMap<u64, (ClientId, &'a str, Option<u64>, Option<&'a str>)>>;

fn sent_numbered(trace: &Trace) -> SentNumbered<'_> {
    let mut out: SentNumbered<'_> = BTreeMap::new();
    for e in &trace.events {
        if let Fact::Sent {
            client,
            message: Some(m),
            len,
            digest,
        } = &e.fact
        {
            if let Some((sender, seq)) = &m.numbered {
                out.entry(sender.as_str())
                    .or_default()
                    .insert(*seq, (*client, m.key.as_str(), *len, digest.as_deref()));
            }
        }
    }
    out
}

fn name(trace: &Trace, c: ClientId) -> &str {
    &trace.clients[c].name
}

/// Any two clients deliver the messages they both deliver in the same relative order.
pub fn agreed_order(trace: &Trace) -> Vec<Violation> {
    let all = deliveries(trace);
    let mut out = Vec::new();
    for (a, da) in all.iter().enumerate() {
        let in_a: HashMap<&str, usize> = da
            .iter()
            .enumerate()
            .map(|(k, d)| (d.message.key.as_str(), k))
            .collect();
        for (b, db) in all.iter().enumerate().skip(a + 1) {
            // The common messages, in b's order, must have increasing positions in a.
            let mut last: Option<(usize, &str)> = None;
            for d in db {
                let key = d.message.key.as_str();
                let Some(&pa) = in_a.get(key) else { continue };
                if let Some((lp, lk)) = last {
                    if pa < lp {
                        out.push(violation(
                            Check::AgreedOrder,
                            format!(
                                "{} delivered {key} before {lk}, {} the other way round",
                                name(trace, a),
                                name(trace, b)
                            ),
                        ));
                        break;
                    }
                }
                last = Some((pa, key));
            }
        }
    }
    out
}

/// Two clients of one group that passed together from one configuration to the next and
/// delivered different messages in the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The group's name bytes.
    pub group: Vec<u8>,
    /// The configuration they delivered in.
    pub from: String,
    /// The one they passed to.
    pub to: String,
    /// One client.
    pub a: ClientId,
    /// The other.
    pub b: ClientId,
    /// Message keys only `a` delivered in `from`.
    pub only_a: Vec<String>,
    /// Message keys only `b` delivered in `from`.
    pub only_b: Vec<String>,
}

impl Divergence {
    /// As a report words it.
    pub fn violation(&self, trace: &Trace) -> Violation {
        let (a, b) = (name(trace, self.a), name(trace, self.b));
        violation(
            Check::VirtualSynchrony,
            format!(
                "clients {a} and {b} of {:?} went {} -> {} having delivered different \
                 messages in {}: only {a}: {:?}, only {b}: {:?}",
                escape_name(&self.group),
                self.from,
                self.to,
                self.from,
                &self.only_a[..self.only_a.len().min(3)],
                &self.only_b[..self.only_b.len().min(3)],
            ),
        )
    }
}

/// Who passed together from one configuration to the next: (from, to, group, n-th such step
/// of a client) -> each client that made it, with what it delivered in `from`.
type Passages<'a> = BTreeMap<(String, String, Vec<u8>, usize), Vec<(ClientId, BTreeSet<&'a str>)>>;

/// Clients of one group that pass together from one configuration to the next delivered the
/// same messages in it ([`Configurations`] says what a configuration is and who passes).
pub fn virtual_synchrony(trace: &Trace, rules: &Rules) -> Vec<Divergence> {
    let passages = match rules.configurations {
        Configurations::Confchg => passages_by_confchg(trace),
        Configurations::Rings => passages_by_ring(trace),
    };
    let mut out = Vec::new();
    for ((from, to, group, _), clients) in passages {
        for (i, (a, sa)) in clients.iter().enumerate() {
            for (b, sb) in &clients[i + 1..] {
                if sa != sb {
                    out.push(Divergence {
                        group: group.clone(),
                        from: from.clone(),
                        to: to.clone(),
                        a: *a,
                        b: *b,
                        only_a: sa.difference(sb).map(|k| k.to_string()).collect(),
                        only_b: sb.difference(sa).map(|k| k.to_string()).collect(),
                    });
                }
            }
        }
    }
    out
}

/// A client passes from each confchg of a group to its next confchg of the same group; two
/// pass together when the member lists match and it is the n-th time each makes that step.
/// The group is part of it: one process in two groups has the same member set in both, and
/// its two handles rightly deliver different messages.
fn passages_by_confchg(trace: &Trace) -> Passages<'_> {
    let mut views: Vec<Vec<(&[u8], MemberSet)>> =
        trace.clients.iter().map(|_| Vec::new()).collect();
    for e in &trace.events {
        if let Fact::Confchg {
            client,
            group,
            members,
            ..
        } = &e.fact
        {
            views[*client].push((group, members.iter().copied().collect()));
        }
    }
    let all = deliveries(trace);
    let mut out: Passages<'_> = BTreeMap::new();
    for (c, list) in views.iter().enumerate() {
        let mut occurrence: BTreeMap<(&[u8], &MemberSet, &MemberSet), usize> = BTreeMap::new();
        for (k, w) in list.windows(2).enumerate() {
            let ((group, from), (next_group, to)) = (&w[0], &w[1]);
            if group != next_group {
                // Left one group and joined another: no step of either.
                continue;
            }
            let n = occurrence.entry((group, from, to)).or_insert(0);
            *n += 1;
            // Deliveries after confchg k and before confchg k+1 came in view k+1.
            let delivered = all[c]
                .iter()
                .filter(|d| d.view == k + 1)
                .map(|d| d.message.key.as_str())
                .collect();
            out.entry((format!("{from:?}"), format!("{to:?}"), group.to_vec(), *n))
                .or_default()
                .push((c, delivered));
        }
    }
    out
}

/// A client passes from ring R to R' when its node installed R then R', it was a member
/// (its first confchg) before R began on its node, and it did not leave, end or lose its
/// node before R' began there (a client that joins mid-ring rightly misses what came before
/// its join).
fn passages_by_ring(trace: &Trace) -> Passages<'_> {
    let mut rings: BTreeMap<u32, Vec<(&str, i64)>> = BTreeMap::new();
    let mut joined: BTreeMap<ClientId, (&[u8], i64)> = BTreeMap::new();
    let mut gone: BTreeMap<ClientId, i64> = BTreeMap::new();
    let mut node_ends: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    let mut delivered: BTreeMap<(ClientId, &str), BTreeSet<&str>> = BTreeMap::new();
    for e in &trace.events {
        match &e.fact {
            Fact::Ring { node, ring, .. } => rings.entry(*node).or_default().push((ring, e.time)),
            Fact::Confchg { client, group, .. } => {
                joined.entry(*client).or_insert((group, e.time));
            }
            Fact::Left { client } | Fact::ClientEnded { client } => {
                gone.entry(*client).or_insert(e.time);
            }
            Fact::NodeEnded { node } => node_ends.entry(*node).or_default().push(e.time),
            Fact::Delivered {
                client,
                message,
                ring: Some(ring),
                ..
            } => {
                delivered
                    .entry((*client, ring))
                    .or_default()
                    .insert(&message.key);
            }
            _ => {}
        }
    }
    let gone_at = |c: ClientId, since: i64| {
        let by_client = gone.get(&c).copied().unwrap_or(i64::MAX);
        let by_node = node_ends
            .get(&trace.clients[c].node)
            .and_then(|t| t.iter().copied().find(|t| *t >= since))
            .unwrap_or(i64::MAX);
        by_client.min(by_node)
    };
    let mut out: Passages<'_> = BTreeMap::new();
    for (node, list) in &rings {
        for w in list.windows(2) {
            let ((from, began), (to, next_began)) = (w[0], w[1]);
            for (c, Client { node: n, .. }) in trace.clients.iter().enumerate() {
                let Some(&(group, since)) = joined.get(&c) else {
                    continue;
                };
                if n != node || since > began || gone_at(c, since) < next_began {
                    continue;
                }
                let set = delivered.get(&(c, from)).cloned().unwrap_or_default();
                out.entry((from.to_owned(), to.to_owned(), group.to_vec(), 0))
                    .or_default()
                    .push((c, set));
            }
        }
    }
    out
}

/// A client receives each sender's messages in the order they were sent; with
/// [`Rules::fifo_gaps`], also without a gap inside one configuration.
pub fn fifo(trace: &Trace, rules: &Rules) -> Vec<Violation> {
    let sent = sent_numbered(trace);
    let mut out = Vec::new();
    for (c, list) in deliveries(trace).iter().enumerate() {
        let mut last: BTreeMap<&str, (u64, &Dlv<'_>)> = BTreeMap::new();
        for d in list {
            let Some((sender, seq)) = &d.message.numbered else {
                continue;
            };
            if let Some(&(prev, before)) = last.get(sender.as_str()) {
                let same_configuration = match rules.configurations {
                    Configurations::Confchg => before.view == d.view,
                    Configurations::Rings => before.ring == d.ring,
                };
                if *seq <= prev {
                    out.push(violation(
                        Check::Fifo,
                        format!(
                            "{}: {} delivered after seq {prev} of {sender}",
                            name(trace, c),
                            d.message.key
                        ),
                    ));
                } else if rules.fifo_gaps
                    && same_configuration
                    && *seq != prev + 1
                    && sent
                        .get(sender.as_str())
                        .is_some_and(|s| s.contains_key(&(prev + 1)))
                {
                    out.push(violation(
                        Check::Fifo,
                        format!(
                            "{}: gap in one configuration, seq {prev} of {sender} then {}",
                            name(trace, c),
                            d.message.key
                        ),
                    ));
                }
            }
            last.insert(sender, (*seq, d));
        }
    }
    out
}

/// A sender that stays a member receives its own messages ([`SelfDeliveryWindow`] says
/// which are owed). One violation per sender and sender label, naming the first missing.
pub fn self_delivery(trace: &Trace, rules: &Rules) -> Vec<Violation> {
    let mut joined: BTreeMap<ClientId, usize> = BTreeMap::new();
    // Positions where a client's membership ends: its own leave or end, its node's end.
    let mut left: BTreeMap<ClientId, Vec<usize>> = BTreeMap::new();
    let mut ended: BTreeMap<ClientId, Vec<usize>> = BTreeMap::new();
    let mut node_ended: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    let mut got: BTreeSet<(ClientId, &str)> = BTreeSet::new();
    // Unheaded deliveries' digests per receiver: a message too short for its header comes
    // back without sender and seq and is matched by content.
    let mut plain: BTreeMap<ClientId, Vec<&str>> = BTreeMap::new();
    for (pos, e) in trace.events.iter().enumerate() {
        match &e.fact {
            Fact::Joined { client } => {
                joined.entry(*client).or_insert(pos);
            }
            Fact::Left { client } => left.entry(*client).or_default().push(pos),
            Fact::ClientEnded { client } => ended.entry(*client).or_default().push(pos),
            Fact::NodeEnded { node } => node_ended.entry(*node).or_default().push(pos),
            Fact::Delivered {
                client,
                message,
                digest,
                ..
            } => {
                got.insert((*client, &message.key));
                if message.numbered.is_none() {
                    if let Some(d) = digest {
                        plain.entry(*client).or_default().push(d);
                    }
                }
            }
            _ => {}
        }
    }
    let no_ends = Vec::new();
    let ends = |c: ClientId| {
        [
            left.get(&c).unwrap_or(&no_ends),
            ended.get(&c).unwrap_or(&no_ends),
            node_ended.get(&trace.clients[c].node).unwrap_or(&no_ends),
        ]
    };
    let owed = |c: ClientId, pos: usize| {
        if joined.get(&c).is_none_or(|&j| j >= pos) {
            return false;
        }
        match rules.self_delivery {
            SelfDeliveryWindow::UntilFirstEnd => ends(c)
                .iter()
                .all(|l| l.first().is_none_or(|&end| pos < end)),
            SelfDeliveryWindow::UnlessEndedLater => ends(c)
                .iter()
                .all(|l| l.last().is_none_or(|&end| end < pos)),
        }
    };
    // (sender, label) -> (first missing key, how many), in order of the first miss; each
    // label has its own pool of unheaded deliveries to match.
    type Misses<'a> = Vec<((ClientId, &'a str), (&'a str, usize))>;
    let mut missing: Misses<'_> = Vec::new();
    let mut pools: BTreeMap<(ClientId, &str), Vec<&str>> = BTreeMap::new();
    for (pos, e) in trace.events.iter().enumerate() {
        let Fact::Sent {
            client,
            message: Some(m),
            digest,
            ..
        } = &e.fact
        else {
            continue;
        };
        if !owed(*client, pos) || got.contains(&(*client, m.key.as_str())) {
            continue;
        }
        let label = m.numbered.as_ref().map_or("", |(s, _)| s.as_str());
        let pool = pools
            .entry((*client, label))
            .or_insert_with(|| plain.get(client).cloned().unwrap_or_default());
        if let Some(i) = digest
            .as_deref()
            .and_then(|d| pool.iter().position(|p| *p == d))
        {
            pool.swap_remove(i);
            continue;
        }
        match missing.iter_mut().find(|(k, _)| *k == (*client, label)) {
            Some((_, (_, n))) => *n += 1,
            None => missing.push(((*client, label), (&m.key, 1))),
        }
    }
    missing
        .into_iter()
        .map(|((c, _), (first, n))| Violation {
            check: Check::SelfDelivery,
            detail: if n == 1 {
                format!("{first} never came back to its sender {}", name(trace, c))
            } else {
                format!(
                    "{first} and {} more of {}'s own messages never came back to it",
                    n - 1,
                    name(trace, c)
                )
            },
            client: Some(c),
        })
        .collect()
}

/// No client receives a message twice.
pub fn no_duplicates(trace: &Trace) -> Vec<Violation> {
    let mut out = Vec::new();
    for (c, list) in deliveries(trace).iter().enumerate() {
        let mut seen = BTreeSet::new();
        for d in list {
            if !seen.insert(d.message.key.as_str()) {
                out.push(violation(
                    Check::NoDuplicates,
                    format!("{}: {} delivered twice", name(trace, c), d.message.key),
                ));
            }
        }
    }
    out
}

/// Every delivered message was sent: by that sender, with that sequence number, length and
/// content, and the callback names the sender's pid.
pub fn no_invented(trace: &Trace) -> Vec<Violation> {
    let sent = sent_numbered(trace);
    let sent_plain: BTreeSet<(Option<u64>, &str)> = trace
        .events
        .iter()
        .filter_map(|e| match &e.fact {
            Fact::Sent {
                len,
                digest: Some(d),
                ..
            } => Some((*len, d.as_str())),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for e in &trace.events {
        let Fact::Delivered {
            client,
            message,
            sender_pid,
            len,
            digest,
            intact,
            ..
        } = &e.fact
        else {
            continue;
        };
        let who = name(trace, *client);
        let key = &message.key;
        let mut push = |detail: String| out.push(violation(Check::NoInvented, detail));
        let Some((sender, seq)) = &message.numbered else {
            if !digest
                .as_deref()
                .is_some_and(|d| sent_plain.contains(&(*len, d)))
            {
                push(format!(
                    "{who}: unheaded message {key} of {len:?} bytes was never sent"
                ));
            }
            continue;
        };
        let Some(seqs) = sent.get(sender.as_str()) else {
            push(format!("{who}: {key} from a sender that never sent"));
            continue;
        };
        match seqs.get(seq) {
            // A key that names a sent message's sender and seq but is spelled otherwise was
            // not sent either.
            Some((_, sent_key, ..)) if sent_key != key => {
                push(format!("{who}: {key} was never sent"));
            }
            None => push(format!("{who}: {key} was never sent")),
            Some((_, _, sent_len, sent_digest)) => {
                if let (Some(s), Some(l)) = (sent_len, len) {
                    if s != l {
                        push(format!("{who}: {key} has {l} bytes, sent {s}"));
                    }
                }
                let digest_differs = matches!((sent_digest, digest), (Some(s), Some(d)) if s != d);
                if digest_differs || *intact == Some(false) {
                    push(format!("{who}: {key} content differs from what was sent"));
                }
            }
        }
        // The pid of whoever sent under this label (any of its messages).
        let sender_client = seqs.values().last().map(|(c, ..)| *c);
        if let (Some(expect), Some(pid)) =
            (sender_client.and_then(|c| trace.clients[c].pid), sender_pid)
        {
            if expect != *pid {
                push(format!(
                    "{who}: {key} reported with pid {pid}, sender's pid differs"
                ));
            }
        }
    }
    out
}

fn set(list: &[Member]) -> MemberSet {
    list.iter().map(|a| (a.node, a.pid)).collect()
}

/// members = previous members + joined - left, on every confchg of a client's group.
pub fn confchg_consistency(trace: &Trace) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut prev: BTreeMap<(ClientId, &[u8]), MemberSet> = BTreeMap::new();
    for e in &trace.events {
        let Fact::Confchg {
            client,
            group,
            members,
            left,
            joined,
        } = &e.fact
        else {
            continue;
        };
        let m: MemberSet = members.iter().copied().collect();
        let (l, j) = (set(left), set(joined));
        let who = format!("{} group {:?}", name(trace, *client), escape_name(group));
        let mut push = |detail: String| out.push(violation(Check::ConfchgConsistency, detail));
        if let Some(p) = prev.get(&(*client, group.as_slice())) {
            if let Some(x) = j.intersection(p).next() {
                push(format!("{who}: {x:?} joined but was already a member"));
            }
            if let Some(x) = l.difference(p).next() {
                push(format!("{who}: {x:?} left but was not a member"));
            }
            let expect: MemberSet = p.union(&j).filter(|x| !l.contains(x)).copied().collect();
            if expect != m {
                push(format!(
                    "{who}: members {m:?} != previous {p:?} + joined {j:?} - left {l:?}"
                ));
            }
        } else if !l.is_empty() && j.is_empty() {
            push(format!(
                "{who}: first confchg has left entries but nobody joined"
            ));
        }
        if let Some(x) = j.intersection(&l).next() {
            push(format!("{who}: {x:?} both joined and left"));
        }
        prev.insert((*client, group), m);
    }
    out
}

/// joined entries carry JOIN/NODEUP, left entries LEAVE/NODEDOWN/PROCDOWN.
pub fn confchg_reasons(trace: &Trace) -> Vec<Violation> {
    let mut out = Vec::new();
    for e in &trace.events {
        let Fact::Confchg {
            client,
            joined,
            left,
            ..
        } = &e.fact
        else {
            continue;
        };
        let who = name(trace, *client);
        for a in joined {
            if !matches!(a.reason.as_str(), "JOIN" | "NODEUP") {
                out.push(violation(
                    Check::ConfchgReasons,
                    format!("{who}: joined entry {a:?} has reason {}", a.reason),
                ));
            }
        }
        for a in left {
            if !matches!(a.reason.as_str(), "LEAVE" | "NODEDOWN" | "PROCDOWN") {
                out.push(violation(
                    Check::ConfchgReasons,
                    format!("{who}: left entry {a:?} has reason {}", a.reason),
                ));
            }
        }
    }
    out
}

/// Everyone who sees a ring installed sees it with the same members.
pub fn totem_rings(trace: &Trace) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut rings: BTreeMap<&str, (&str, BTreeSet<u32>)> = BTreeMap::new();
    for e in &trace.events {
        let Fact::Ring {
            observer,
            ring,
            members,
            ..
        } = &e.fact
        else {
            continue;
        };
        let m: BTreeSet<u32> = members.iter().copied().collect();
        match rings.get(ring.as_str()) {
            Some((first, pm)) if *pm != m => out.push(violation(
                Check::TotemRings,
                format!("ring {ring}: {first} saw members {pm:?}, {observer} saw {m:?}"),
            )),
            Some(_) => {}
            None => {
                rings.insert(ring, (observer, m));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
