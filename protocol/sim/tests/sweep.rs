//! The CI seed sweep: random clusters, traffic and faults, every checker on. Seeds listed in
//! known-failures.txt must still fail, and fail the way their class says: `open` (a bug of
//! ours) or `corosync-equivalent` (every violation explained as corosync 3.1.7's own
//! behaviour by the checkers); every other seed must pass. So a fix, a new bug, or a
//! corosync-equivalent seed that starts failing some other way cannot go unnoticed.
//! `cargo run --release -p totem-sim -- sweep --seeds 1000` runs a larger sweep.

use std::collections::{BTreeMap, BTreeSet};

const SEEDS: std::ops::RangeInclusive<u64> = 1..=300;

/// A line of known-failures.txt: seed, checker, class.
fn known_failures() -> BTreeMap<u64, (String, String)> {
    include_str!("../known-failures.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let seed = words.next()?.parse().ok()?;
            let checker = words.next()?.to_string();
            let class = words.next()?.to_string();
            Some((seed, (checker, class)))
        })
        .filter(|(s, _)| SEEDS.contains(s))
        .collect()
}

#[test]
fn known_failures_name_a_class_for_every_seed() {
    let text = include_str!("../known-failures.txt");
    let listed = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    let known = known_failures();
    assert_eq!(
        known.len(),
        listed,
        "a line without seed, checker and class"
    );
    for (seed, (_, class)) in &known {
        assert!(
            class == "open" || class == "corosync-equivalent",
            "seed {seed}: class {class:?}"
        );
    }
}

#[test]
fn sweep_seeds_1_to_300_break_no_property_except_the_known_failures_as_classified() {
    let known = known_failures();
    let mut failing = BTreeSet::new();
    let mut misclassified = Vec::new();
    let mut faults = 0;
    for seed in SEEDS {
        let (report, _) = totem_sim::scenario::run_seed(seed, false);
        faults += report.faults;
        if report.violations.is_empty() {
            continue;
        }
        failing.insert(seed);
        let open: Vec<_> = report
            .violations
            .iter()
            .filter(|v| v.corosync_equivalent.is_none())
            .collect();
        match known.get(&seed) {
            None => eprintln!(
                "seed {seed}: {:?}\n  replay: cargo run --release -p totem-sim -- run --seed {seed}",
                report.violations.first()
            ),
            Some((checker, class)) => {
                let class_seen = if open.is_empty() {
                    "corosync-equivalent"
                } else {
                    "open"
                };
                let checker_seen = report.violations.iter().any(|v| v.checker == checker);
                if class_seen != class || !checker_seen {
                    misclassified.push(format!(
                        "seed {seed}: listed as {checker} {class}, seen {class_seen}: {:?}",
                        open.first().unwrap_or(&&report.violations[0])
                    ));
                }
            }
        }
    }
    assert!(faults > 100, "the sweep injected {faults} faults");
    assert_eq!(
        failing,
        known.keys().copied().collect::<BTreeSet<_>>(),
        "violating seeds differ from known-failures.txt"
    );
    assert!(misclassified.is_empty(), "{misclassified:#?}");
}
