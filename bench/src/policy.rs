//! Policy decisions at site scale: 10,000 devices, 1,000 users, 200 device groups (half by
//! name pattern, half by explicit members), user groups and grants; ns per
//! `Policy::decide` (target: under 1 µs), then the daemon's whole path: the same site in a real
//! store and [`mo_store::AccessGate::check`], what mod's `Access::check` runs at every door
//! (the policy generation read from SQLite, the cached policy, the decision, its audit row
//! through the background writer); and, for comparison, the path as it was before the writer
//! (one synchronous audit insert per decision).

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
    /// Decisions to time through the daemon's path (at most `--checks`); a tenth of them (at most
    /// 1,000) with a synchronous audit insert each.
    #[arg(long, default_value_t = 50_000)]
    pub path_checks: usize,
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
    let mut len = 0usize;
    for (u, a, d) in queries.iter().take(1000) {
        len += policy.decide(&users[*u], *a, &devices[*d]).reason().len();
    }
    println!(
        "policy: {:.0} ns per decision with its reason written ({} bytes of reasons)",
        start.elapsed().as_nanos() as f64 / 1000.0,
        len
    );
    let direct = 1e9 / ns;
    println!(
        "policy: before (Policy::decide alone): {:.0} decisions per second, {:.3} µs per decision (CPU)",
        direct,
        ns / 1e3
    );
    daemon_path(&o, &policy, &users, &devices, &queries)
}

/// The daemon's path over the same site in a real store: every check's answer compared with
/// `Policy::decide`, every audit row counted after the writer is shut down.
fn daemon_path(
    o: &Opts,
    policy: &Policy,
    users: &[String],
    devices: &[String],
    queries: &[(usize, Permission, usize)],
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let start = Instant::now();
    let store = fill_store(tmp.path(), policy, users, devices)?;
    println!(
        "policy: the site written to a store in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let loaded = store.load_policy()?;
    let checks = o.path_checks.min(o.checks).max(1);
    let expect = |i: usize| {
        let (u, a, d) = queries[i % queries.len()];
        policy.decide(&users[u], a, &devices[d]).allowed()
    };
    if (0..queries.len()).any(|i| {
        let (u, a, d) = queries[i];
        loaded.decide(&users[u], a, &devices[d]).allowed() != expect(i)
    }) {
        bail!("the policy read back from the store decides differently from the one written");
    }

    // The daemon's path: mo_store::AccessGate, as mod's Access::check calls it.
    let gate = mo_store::AccessGate::new(store.clone(), Box::new(|_| {}))?;
    let (cpu0, proc0, start) = (thread_cpu_ns()?, process_cpu_ns()?, Instant::now());
    let mut wrong = 0usize;
    for i in 0..checks {
        let (u, a, d) = queries[i % queries.len()];
        let allowed = gate.check(&users[u], "bench", a, &devices[d]).is_ok();
        wrong += usize::from(allowed != expect(i));
    }
    let queued = start.elapsed();
    gate.shutdown();
    let (wall, cpu, proc_cpu) = (
        start.elapsed(),
        thread_cpu_ns()? - cpu0,
        process_cpu_ns()? - proc0,
    );
    drop(gate);
    if wrong > 0 {
        bail!("{wrong} of {checks} checks through the gate disagreed with Policy::decide");
    }
    let rows = audit_rows(&store)?;
    if rows != checks {
        bail!("{checks} decisions but {rows} audit rows: audit rows were lost");
    }
    let per = |d: f64| d / checks as f64;
    println!(
        "policy: after (the daemon's path, AccessGate::check, audit through the writer): \
         {:.0} decisions per second, {:.2} µs per decision (wall, writer drained); caller CPU \
         {:.2} µs, whole process {:.2} µs per decision; {} checks, {} audit rows, \
         {:.2} µs per decision until queued",
        checks as f64 / wall.as_secs_f64(),
        per(wall.as_secs_f64() * 1e6),
        per(cpu as f64 / 1e3),
        per(proc_cpu as f64 / 1e3),
        checks,
        rows,
        per(queued.as_secs_f64() * 1e6),
    );

    // The path before the writer: a synchronous, synced insert per decision.
    let sync_checks = (checks / 10).clamp(1, 1000);
    let (proc0, start) = (process_cpu_ns()?, Instant::now());
    for i in 0..sync_checks {
        let (u, a, d) = queries[i % queries.len()];
        let _generation = store.policy_generation()?;
        let decision = loaded.decide(&users[u], a, &devices[d]);
        store.append_audit(&mo_store::AuditEntry::from_decision(
            &decision,
            Some("bench"),
        ))?;
    }
    let wall = start.elapsed().as_secs_f64();
    let proc_cpu = process_cpu_ns()? - proc0;
    if audit_rows(&store)? != checks + sync_checks {
        bail!("synchronous audit rows were lost");
    }
    println!(
        "policy: for comparison, one synchronous audit insert per decision (the daemon before \
         the writer): {:.0} decisions per second, {:.2} µs per decision (wall), {:.2} µs CPU; \
         {} checks",
        sync_checks as f64 / wall,
        wall * 1e6 / sync_checks as f64,
        proc_cpu as f64 / 1e3 / sync_checks as f64,
        sync_checks
    );
    Ok(())
}

/// The site of [`site`] in a store under `dir`: devices, users, groups and grants.
fn fill_store(
    dir: &std::path::Path,
    policy: &Policy,
    users: &[String],
    devices: &[String],
) -> anyhow::Result<mo_store::Store> {
    let data = mo_store::DataDir::open(dir)?;
    let store = data.open_store()?;
    for d in devices {
        store.add_device(&mo_store::Device::new(d, format!("sim://{d}")))?;
    }
    for u in users {
        store.add_user(u, None)?;
    }
    // The built-in group `all` is in every store already.
    for g in policy.device_groups().filter(|g| g.name != "all") {
        store.add_device_group(g)?;
    }
    for g in policy.user_groups() {
        let members: Vec<String> = g.members.iter().cloned().collect();
        store.add_user_group(&g.name, &members)?;
    }
    for g in policy.grants() {
        match store.add_grant(g) {
            Ok(()) | Err(mo_store::Error::NameExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(store)
}

/// Audit rows of the bench's decisions (source `bench`).
fn audit_rows(store: &mo_store::Store) -> anyhow::Result<usize> {
    Ok(store
        .query_audit(&mo_store::AuditFilter::default())?
        .iter()
        .filter(|e| e.source.as_deref() == Some("bench"))
        .count())
}

/// CPU time (user + system) this thread has used, in ns.
fn thread_cpu_ns() -> anyhow::Result<u64> {
    cpu_ns(nix::sys::resource::UsageWho::RUSAGE_THREAD)
}

/// CPU time (user + system) of the whole process, in ns (the audit writer thread included).
fn process_cpu_ns() -> anyhow::Result<u64> {
    cpu_ns(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

fn cpu_ns(who: nix::sys::resource::UsageWho) -> anyhow::Result<u64> {
    let usage = nix::sys::resource::getrusage(who)?;
    let ns =
        |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000_000 + t.tv_usec() as u64 * 1_000;
    Ok(ns(usage.user_time()) + ns(usage.system_time()))
}
