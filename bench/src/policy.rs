//! Policy decisions at site scale: 10,000 devices, 1,000 users, 200 device groups (half by
//! name pattern, half by explicit members), user groups and grants; ns per
//! `Policy::decide` (target: under 1 µs).

use std::hint::black_box;
use std::time::Instant;

use anyhow::bail;
use clap::Args;
use mo_core::policy::{DeviceGroup, Grant, Permission, Policy, Role, UserGroup};

/// Sizes of the generated site.
#[derive(Debug, Args)]
pub struct Opts {
    /// Devices, named `rackR-NNN` (100 racks).
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Users, named `userN`.
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// Device groups: half by pattern (`rackR-*`), half by 50 explicit members each.
    #[arg(long, default_value_t = 200)]
    pub groups: usize,
    /// Decisions to time.
    #[arg(long, default_value_t = 2_000_000)]
    pub checks: usize,
}

/// A small deterministic generator (no dependency, same site every run).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Build the site: every user is in one of `users / 20` user groups, each user group has 3
/// grants and each user 2 direct ones, on random groups with random built-in roles.
pub fn site(o: &Opts) -> anyhow::Result<(Policy, Vec<String>, Vec<String>)> {
    let racks = 100;
    let devices: Vec<String> = (0..o.devices)
        .map(|i| format!("rack{}-{:03}", i % racks, i / racks))
        .collect();
    let users: Vec<String> = (0..o.users).map(|i| format!("user{i}")).collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut policy = Policy::new();
    let mut group_names = Vec::with_capacity(o.groups);
    for g in 0..o.groups {
        let name = format!("g{g}");
        let group = if g % 2 == 0 {
            DeviceGroup::new(&name).pattern(&format!("rack{}-*", g / 2 % racks))?
        } else {
            (0..50).fold(DeviceGroup::new(&name), |group, _| {
                group.member(devices[rng.below(devices.len())].clone())
            })
        };
        policy.add_device_group(group)?;
        group_names.push(name);
    }
    let roles = [Role::VIEWER, Role::OPERATOR, Role::ADMIN];
    let user_groups = (o.users / 20).max(1);
    for ug in 0..user_groups {
        let name = format!("team{ug}");
        let group = users
            .iter()
            .enumerate()
            .filter(|(i, _)| i % user_groups == ug)
            .fold(UserGroup::new(&name), |g, (_, u)| g.member(u.clone()));
        policy.add_user_group(group)?;
        for _ in 0..3 {
            let dg = &group_names[rng.below(group_names.len())];
            policy.add_grant(Grant::to_group(&name, roles[rng.below(2)], dg))?;
        }
    }
    for user in &users {
        for _ in 0..2 {
            let dg = &group_names[rng.below(group_names.len())];
            policy.add_grant(Grant::to_user(user, roles[rng.below(3)], dg))?;
        }
    }
    Ok((policy, users, devices))
}

/// Run the benchmark and print ns per decision.
pub fn run(o: Opts) -> anyhow::Result<()> {
    let start = Instant::now();
    let (policy, users, devices) = site(&o)?;
    println!(
        "policy: {} devices, {} users, {} device groups, {} grants (built in {:.1} ms)",
        devices.len(),
        users.len(),
        o.groups,
        policy.grants().count(),
        start.elapsed().as_secs_f64() * 1e3
    );
    let mut rng = XorShift(42);
    let queries: Vec<(usize, Permission, usize)> = (0..4096)
        .map(|_| {
            (
                rng.below(users.len()),
                Permission::ALL[rng.below(Permission::ALL.len())],
                rng.below(devices.len()),
            )
        })
        .collect();
    // Warm up.
    for (u, a, d) in &queries {
        black_box(policy.decide(&users[*u], *a, &devices[*d]).allowed());
    }
    let mut allowed = 0usize;
    let cpu_start = thread_cpu_ns()?;
    let start = Instant::now();
    for i in 0..o.checks {
        let (u, a, d) = queries[i % queries.len()];
        if black_box(policy.decide(black_box(&users[u]), a, black_box(&devices[d]))).allowed() {
            allowed += 1;
        }
    }
    let elapsed = start.elapsed();
    let cpu = thread_cpu_ns()?.saturating_sub(cpu_start);
    let wall_ns = elapsed.as_nanos() as f64 / o.checks.max(1) as f64;
    // CPU time of this thread: what a decision costs even when other processes share the cores.
    let ns = cpu as f64 / o.checks.max(1) as f64;
    println!(
        "policy: {:.0} ns CPU ({:.0} ns wall) per decision over {} checks ({:.1}% allowed); \
         target < 1000 ns: {}",
        ns,
        wall_ns,
        o.checks,
        100.0 * allowed as f64 / o.checks.max(1) as f64,
        if ns < 1000.0 { "met" } else { "MISSED" }
    );
    if allowed == 0 || allowed == o.checks {
        bail!(
            "every decision was the same ({allowed} of {} allowed): the site is not what it should be",
            o.checks
        );
    }
    let start = Instant::now();
    let mut len = 0;
    for (u, a, d) in queries.iter().take(1000) {
        len += policy.decide(&users[*u], *a, &devices[*d]).reason().len();
    }
    println!(
        "policy: {:.0} ns per decision with its reason written ({} bytes of reasons)",
        start.elapsed().as_nanos() as f64 / 1000.0,
        len
    );
    Ok(())
}

/// CPU time (user + system) this thread has used, in ns.
fn thread_cpu_ns() -> anyhow::Result<u64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_THREAD)?;
    let ns =
        |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000_000 + t.tv_usec() as u64 * 1_000;
    Ok(ns(usage.user_time()) + ns(usage.system_time()))
}
