//! Network partitions between real processes: one network namespace per node, each joined by a
//! veth pair to a bridge in the root namespace (where the clients run). Cutting node i from node
//! j adds a blackhole route for j's address inside i's namespace and the reverse: packets are
//! dropped, never answered with a reset, as in a real partition. Everything is removed on drop.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{Context, bail};

/// Nodes the namespace layout has room for (slot i gets `.{i + 1}`; the bridge is `.254`).
pub const SLOTS_MAX: usize = 16;

pub struct Network {
    /// Unique per harness process: `lj<pid>`.
    prefix: String,
    /// Third octet of 10.213.x.0/24, derived from the pid so parallel runs do not collide.
    subnet: u8,
    slots: usize,
    /// Pairs (i, j), i < j, currently cut.
    cut: BTreeSet<(usize, usize)>,
    /// Slots currently cut from the clients (the root namespace).
    cut_from_clients: BTreeSet<usize>,
    created: bool,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip").args(args).output().context("run `ip` (iproute2)")?;
    if !output.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

impl Network {
    /// Fails with a clear message when not root or `ip netns` is unavailable: partition nemeses
    /// must never be skipped silently.
    pub fn create(slots: usize) -> anyhow::Result<Network> {
        assert!(slots <= SLOTS_MAX);
        let uid = Command::new("id").arg("-u").output().context("run `id -u`")?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            bail!("network partitions need root (network namespaces, veth links, blackhole routes)");
        }
        ip(&["netns", "list"]).context("`ip netns` is unavailable: partitions need iproute2 with netns support")?;
        let pid = std::process::id();
        let mut net = Network { prefix: format!("lj{pid}"), subnet: (pid % 200 + 20) as u8, slots, cut: BTreeSet::new(), cut_from_clients: BTreeSet::new(), created: true };
        net.setup().context("set up the partition network")?;
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.prefix)
    }
    pub fn namespace(&self, slot: usize) -> String {
        format!("{}n{slot}", self.prefix)
    }
    fn veth(&self, slot: usize) -> String {
        format!("{}v{slot}", self.prefix)
    }
    pub fn address(&self, slot: usize) -> String {
        format!("10.213.{}.{}", self.subnet, slot + 1)
    }
    /// The bridge's address: where the clients (the root namespace) reach the nodes from.
    fn clients_address(&self) -> String {
        format!("10.213.{}.254", self.subnet)
    }

    fn setup(&mut self) -> anyhow::Result<()> {
        let bridge = self.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{}/24", self.clients_address()), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for slot in 0..self.slots {
            self.add_namespace(slot)?;
        }
        Ok(())
    }

    fn add_namespace(&self, slot: usize) -> anyhow::Result<()> {
        let (ns, veth, bridge) = (self.namespace(slot), self.veth(slot), self.bridge());
        ip(&["netns", "add", &ns])?;
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
        ip(&["link", "set", &veth, "master", &bridge])?;
        ip(&["link", "set", &veth, "up"])?;
        ip(&["-n", &ns, "addr", "add", &format!("{}/24", self.address(slot)), "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// A namespace for one more node (the membership nemesis growing the cluster). Returns its slot.
    pub fn add_slot(&mut self) -> anyhow::Result<usize> {
        let slot = self.slots;
        if slot >= SLOTS_MAX {
            bail!("no room for node slot {slot} (at most {SLOTS_MAX})");
        }
        // Counted first, so Drop removes it even if its setup fails half way.
        self.slots += 1;
        self.add_namespace(slot)?;
        Ok(slot)
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: usize, b: usize) -> anyhow::Result<()> {
        let pair = (a.min(b), a.max(b));
        if a == b || self.cut.contains(&pair) {
            return Ok(());
        }
        ip(&["-n", &self.namespace(a), "route", "add", "blackhole", &format!("{}/32", self.address(b))])?;
        ip(&["-n", &self.namespace(b), "route", "add", "blackhole", &format!("{}/32", self.address(a))])?;
        self.cut.insert(pair);
        Ok(())
    }

    /// Cuts `slot` from the clients only: a blackhole route for the clients' address in its
    /// namespace drops everything it sends them (replies included, so their calls time out as
    /// in a real partition); its traffic with the other nodes goes on.
    pub fn cut_from_clients(&mut self, slot: usize) -> anyhow::Result<()> {
        if self.cut_from_clients.insert(slot) {
            ip(&["-n", &self.namespace(slot), "route", "add", "blackhole", &format!("{}/32", self.clients_address())])?;
        }
        Ok(())
    }

    pub fn heal(&mut self) -> anyhow::Result<()> {
        for (a, b) in std::mem::take(&mut self.cut) {
            ip(&["-n", &self.namespace(a), "route", "del", "blackhole", &format!("{}/32", self.address(b))])?;
            ip(&["-n", &self.namespace(b), "route", "del", "blackhole", &format!("{}/32", self.address(a))])?;
        }
        for slot in std::mem::take(&mut self.cut_from_clients) {
            ip(&["-n", &self.namespace(slot), "route", "del", "blackhole", &format!("{}/32", self.clients_address())])?;
        }
        Ok(())
    }

    pub fn cut_from_clients_slots(&self) -> Vec<usize> {
        self.cut_from_clients.iter().copied().collect()
    }

    pub fn cut_pairs(&self) -> Vec<(usize, usize)> {
        self.cut.iter().copied().collect()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if !self.created {
            return;
        }
        // Deleting a namespace deletes its end of the veth, which deletes the pair.
        for slot in 0..self.slots {
            let _ = ip(&["netns", "del", &self.namespace(slot)]);
            let _ = ip(&["link", "del", &self.veth(slot)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}
