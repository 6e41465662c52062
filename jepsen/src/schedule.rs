//! The nemesis schedule: which fault happens when, derived from a seed alone, so a failing run is
//! replayed by giving its seed again. Faults alternate with quiet periods; everything is healed
//! before the end, leaving time for the cluster to converge before the final reads.

use serde::{Deserialize, Serialize};

/// SplitMix64: a tiny, seedable, portable generator (the schedule must not depend on a crate's
/// algorithm changing between versions).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high);
        low + ((u128::from(self.next_u64()) * u128::from(high - low + 1)) >> 64) as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nemesis {
    Kill,
    Pause,
    Partition,
    Membership,
    Corrupt,
    /// Skew and jump one node's clock (the leader's included), live.
    Clock,
    /// SIGKILL every node at once; restart them all.
    KillAll,
    /// Kill a node while it receives or builds a snapshot.
    SnapshotKill,
    /// Fill a node's (small) filesystem with a ballast file; remove it.
    DiskFull,
    /// Corrupt a stopped node's snapshot file and its identity file.
    CorruptFiles,
    /// Cut the clients (not the other nodes) off from one node, the leader mostly.
    ClientPartition,
}

/// Every nemesis, in the order `--rotate` runs them.
pub const ALL_NEMESES: [Nemesis; 11] = [
    Nemesis::Kill,
    Nemesis::Pause,
    Nemesis::Partition,
    Nemesis::Membership,
    Nemesis::Corrupt,
    Nemesis::Clock,
    Nemesis::KillAll,
    Nemesis::SnapshotKill,
    Nemesis::DiskFull,
    Nemesis::CorruptFiles,
    Nemesis::ClientPartition,
];

impl Nemesis {
    pub fn parse(name: &str) -> Option<Nemesis> {
        Some(match name {
            "kill" => Nemesis::Kill,
            "pause" => Nemesis::Pause,
            "partition" => Nemesis::Partition,
            "membership" => Nemesis::Membership,
            "corrupt" => Nemesis::Corrupt,
            "clock" => Nemesis::Clock,
            "kill-all" => Nemesis::KillAll,
            "snapshot-kill" => Nemesis::SnapshotKill,
            "disk-full" => Nemesis::DiskFull,
            "corrupt-files" => Nemesis::CorruptFiles,
            "client-partition" => Nemesis::ClientPartition,
            _ => return None,
        })
    }

    /// The name `--nemesis` takes.
    pub fn name(self) -> &'static str {
        match self {
            Nemesis::Kill => "kill",
            Nemesis::Pause => "pause",
            Nemesis::Partition => "partition",
            Nemesis::Membership => "membership",
            Nemesis::Corrupt => "corrupt",
            Nemesis::Clock => "clock",
            Nemesis::KillAll => "kill-all",
            Nemesis::SnapshotKill => "snapshot-kill",
            Nemesis::DiskFull => "disk-full",
            Nemesis::CorruptFiles => "corrupt-files",
            Nemesis::ClientPartition => "client-partition",
        }
    }
}

/// Which nodes a fault hits, by position in the node list (resolved to the leader at run time
/// where it says so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "target")]
pub enum Target {
    Leader,
    Random { node: usize },
    Majority { nodes: Vec<usize> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "shape")]
pub enum PartitionShape {
    /// The leader alone on one side.
    IsolateLeader,
    /// A random majority and minority.
    Halves { minority: Vec<usize> },
    /// One node sees both sides; the sides do not see each other.
    Bridge { bridge: usize },
    /// Each node sees only its neighbours.
    Ring,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fault")]
pub enum Fault {
    /// SIGKILL, restarted when the window ends.
    Kill { target: Target },
    /// SIGSTOP, SIGCONT when the window ends.
    Pause { target: Target },
    Partition { shape: PartitionShape },
    /// Remove a node and add it back (as a new id) when the window ends.
    Membership { node: usize },
    /// Add a fresh node as a learner (the cluster grows by one); promote it to voter when the
    /// window ends. It stays a member for the rest of the run.
    Grow,
    /// Flip one byte of a stopped node's data file, then restart it: it must refuse or rebuild.
    Corrupt { node: usize },
    /// Shift the node's clock by `offset_secs` (hours ahead or minutes behind) while it runs;
    /// back to the true time (a jump back) when the window ends.
    Clock { target: Target, offset_secs: i64 },
    /// SIGKILL every node at once, restart them all when the window ends.
    KillAll,
    /// Kill a node in the middle of a snapshot: `Install` kills a follower, lets the log run
    /// past the snapshot threshold, restarts it (the leader must send a snapshot) and kills it
    /// again as the snapshot arrives; `Build` kills the node the moment it starts building one.
    SnapshotKill { node: usize, during: SnapshotPhase },
    /// Fill the node's filesystem with a ballast file; remove it when the window ends.
    DiskFull { node: usize },
    /// Stop the node, corrupt its newest snapshot file and its identity file, restart it: it
    /// must refuse to start (then it is rebuilt) or serve right data.
    CorruptFiles { node: usize },
    /// Drop the traffic between the clients and the target (its replies to them), while it
    /// still talks to the other nodes: the clients must go through another node, which forwards
    /// writes to the leader. Healed when the window ends.
    ClientPartition { target: Target },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotPhase {
    Install,
    Build,
}

impl Fault {
    /// The fault's class, as `results.json` counts them (`faults_by_class`).
    pub fn class(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Partition { .. } => "partition",
            Fault::Membership { .. } => "membership",
            Fault::Grow => "grow",
            Fault::Corrupt { .. } => "corrupt",
            Fault::Clock { .. } => "clock",
            Fault::KillAll => "kill-all",
            Fault::SnapshotKill { during: SnapshotPhase::Install, .. } => "snapshot-kill-install",
            Fault::SnapshotKill { during: SnapshotPhase::Build, .. } => "snapshot-kill-build",
            Fault::DiskFull { .. } => "disk-full",
            Fault::CorruptFiles { .. } => "corrupt-files",
            Fault::ClientPartition { .. } => "client-partition",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: u64,
    pub end_ms: u64,
    pub fault: Fault,
}

/// Quiet time before the first fault and after the last heal, for a baseline and convergence.
pub const QUIET_EDGE_MS: u64 = 5_000;
/// Nodes the membership nemesis may add to a run (each stays; the machine is small).
pub const GROWS_MAX: usize = 2;

fn pick_nodes(rng: &mut Rng, nodes: usize, count: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..nodes).collect();
    for i in (1..all.len()).rev() {
        all.swap(i, rng.range(0, i as u64) as usize);
    }
    let mut picked: Vec<usize> = all.into_iter().take(count).collect();
    picked.sort_unstable();
    picked
}

/// The schedule for `nemeses` over `time_limit_ms` with `nodes` nodes.
pub fn plan(seed: u64, nemeses: &[Nemesis], nodes: usize, time_limit_ms: u64) -> Vec<Window> {
    assert!(nodes >= 1);
    let mut rng = Rng::new(seed);
    let mut windows = Vec::new();
    if nemeses.is_empty() {
        return windows;
    }
    let mut now = QUIET_EDGE_MS;
    let last_heal = time_limit_ms.saturating_sub(QUIET_EDGE_MS);
    let majority = nodes / 2 + 1;
    let mut grows = 0;
    loop {
        let length = rng.range(2_000, 8_000);
        if now + length > last_heal {
            break;
        }
        let nemesis = nemeses[rng.range(0, nemeses.len() as u64 - 1) as usize];
        let random = |rng: &mut Rng| rng.range(0, nodes as u64 - 1) as usize;
        let target = |rng: &mut Rng| match rng.range(0, 2) {
            0 => Target::Leader,
            1 => Target::Random { node: random(rng) },
            _ => Target::Majority { nodes: pick_nodes(rng, nodes, majority) },
        };
        let fault = match nemesis {
            Nemesis::Kill => Fault::Kill { target: target(&mut rng) },
            Nemesis::Pause => Fault::Pause { target: target(&mut rng) },
            Nemesis::Partition => Fault::Partition {
                // A ring of 3 is a full mesh (it would cut nothing): from 4 nodes only.
                shape: match rng.range(0, if nodes >= 4 { 3 } else { 2 }) {
                    0 => PartitionShape::IsolateLeader,
                    1 => PartitionShape::Halves { minority: pick_nodes(&mut rng, nodes, nodes - majority) },
                    2 => PartitionShape::Bridge { bridge: random(&mut rng) },
                    _ => PartitionShape::Ring,
                },
            },
            // One membership change in three adds a node (while there is room), the others
            // remove one and rebuild it.
            Nemesis::Membership if rng.range(0, 2) == 0 && grows < GROWS_MAX && nodes + grows < crate::net::SLOTS_MAX => {
                grows += 1;
                Fault::Grow
            }
            Nemesis::Membership => Fault::Membership { node: random(&mut rng) },
            Nemesis::Corrupt => Fault::Corrupt { node: random(&mut rng) },
            Nemesis::Clock => Fault::Clock {
                // One node only (a majority of wrong clocks moves ledger time by design): the
                // leader or a random node; two in three hours ahead, one in three minutes behind.
                target: if rng.range(0, 1) == 0 { Target::Leader } else { Target::Random { node: random(&mut rng) } },
                offset_secs: if rng.range(0, 2) < 2 { rng.range(3_600, 6 * 3_600) as i64 } else { -(rng.range(60, 900) as i64) },
            },
            Nemesis::KillAll => Fault::KillAll,
            Nemesis::SnapshotKill => Fault::SnapshotKill {
                node: random(&mut rng),
                during: if rng.range(0, 1) == 0 { SnapshotPhase::Install } else { SnapshotPhase::Build },
            },
            Nemesis::DiskFull => Fault::DiskFull { node: random(&mut rng) },
            Nemesis::CorruptFiles => Fault::CorruptFiles { node: random(&mut rng) },
            // The leader two times in three (what a client cut off from it must survive).
            Nemesis::ClientPartition => Fault::ClientPartition {
                target: if rng.range(0, 2) < 2 { Target::Leader } else { Target::Random { node: random(&mut rng) } },
            },
        };
        windows.push(Window { start_ms: now, end_ms: now + length, fault });
        now += length + rng.range(1_000, 5_000);
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Nemesis; 11] = ALL_NEMESES;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        assert_eq!(plan(7, &ALL, 5, 120_000), plan(7, &ALL, 5, 120_000));
        assert_ne!(plan(7, &ALL, 5, 120_000), plan(8, &ALL, 5, 120_000));
    }

    #[test]
    fn windows_do_not_overlap_and_heal_before_the_end() {
        for seed in 0..50 {
            let windows = plan(seed, &ALL, 5, 60_000);
            assert!(!windows.is_empty(), "seed {seed}");
            assert!(windows[0].start_ms >= QUIET_EDGE_MS);
            for pair in windows.windows(2) {
                assert!(pair[0].end_ms < pair[1].start_ms, "seed {seed}: {pair:?}");
            }
            assert!(windows.last().unwrap().end_ms <= 60_000 - QUIET_EDGE_MS);
        }
    }

    #[test]
    fn targets_are_valid_nodes_and_majorities_are_majorities() {
        for seed in 0..200 {
            for w in plan(seed, &ALL, 5, 60_000) {
                let check = |n: usize| assert!(n < 5, "seed {seed}: node {n}");
                match w.fault {
                    Fault::Kill { target } | Fault::Pause { target } => match target {
                        Target::Random { node } => check(node),
                        Target::Majority { nodes } => {
                            assert_eq!(nodes.len(), 3);
                            nodes.iter().copied().for_each(check);
                        }
                        Target::Leader => {}
                    },
                    Fault::Partition { shape: PartitionShape::Halves { minority } } => assert_eq!(minority.len(), 2),
                    Fault::Partition { shape: PartitionShape::Bridge { bridge } } => check(bridge),
                    Fault::ClientPartition { target } => match target {
                        Target::Random { node } => check(node),
                        Target::Leader => {}
                        Target::Majority { .. } => panic!("seed {seed}: one node at a time"),
                    },
                    Fault::Clock { target, offset_secs } => {
                        assert!(matches!(target, Target::Leader | Target::Random { .. }), "seed {seed}: one node at a time");
                        if let Target::Random { node } = target {
                            check(node);
                        }
                        assert!((3_600..=6 * 3_600).contains(&offset_secs) || (-900..=-60).contains(&offset_secs), "seed {seed}: {offset_secs}");
                    }
                    Fault::Partition { .. } | Fault::Grow | Fault::KillAll => {}
                    Fault::Membership { node } | Fault::Corrupt { node } | Fault::SnapshotKill { node, .. } | Fault::DiskFull { node } | Fault::CorruptFiles { node } => check(node),
                }
            }
        }
    }

    #[test]
    fn membership_changes_both_grow_and_replace_and_grow_at_most_twice() {
        let (mut grows, mut replaces) = (0, 0);
        for seed in 0..100 {
            let windows = plan(seed, &[Nemesis::Membership], 3, 120_000);
            let g = windows.iter().filter(|w| w.fault == Fault::Grow).count();
            assert!(g <= GROWS_MAX, "seed {seed}: {g} grows");
            grows += g;
            replaces += windows.len() - g;
        }
        assert!(grows > 0 && replaces > 0, "{grows} grows, {replaces} replacements");
    }

    #[test]
    fn a_ring_needs_four_nodes() {
        for seed in 0..100 {
            for w in plan(seed, &[Nemesis::Partition], 3, 120_000) {
                assert_ne!(w.fault, Fault::Partition { shape: PartitionShape::Ring }, "seed {seed}");
            }
        }
        assert!((0..100).any(|seed| plan(seed, &[Nemesis::Partition], 5, 120_000).iter().any(|w| w.fault == Fault::Partition { shape: PartitionShape::Ring })));
    }

    #[test]
    fn every_nemesis_parses_by_its_name() {
        for n in ALL_NEMESES {
            assert_eq!(Nemesis::parse(n.name()), Some(n));
        }
    }

    #[test]
    fn only_the_asked_nemeses_appear() {
        for w in plan(3, &[Nemesis::Pause], 3, 60_000) {
            assert!(matches!(w.fault, Fault::Pause { .. }), "{w:?}");
        }
        assert!(plan(3, &[], 3, 60_000).is_empty());
    }
}
