//! Server selection: smooth weighted round robin, weighted least-connections, and Ketama
//! consistent hashing (pingora's `KetamaHashing`). Each selector picks among a fixed member
//! list, skipping servers that are unusable or already tried by this request. A server in
//! slow start (`slowstart.rs`) is passed over for the part of the picks its ramp withholds,
//! in every mode; when only ramping servers are eligible, one of them is still chosen.

use super::Server;
use pingora::lb::selection::consistent::KetamaHashing;
use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// How one group of servers (primaries or backups) is chosen from.
pub enum Selector {
    RoundRobin {
        /// Member indices in nginx's smooth weighted order, one slot per unit of weight.
        schedule: Vec<usize>,
        next: AtomicUsize,
    },
    LeastConn {
        members: Vec<usize>,
        /// Rotates the starting point so ties spread evenly.
        next: AtomicUsize,
    },
    Hash {
        ring: Arc<KetamaHashing>,
        by_addr: HashMap<SocketAddr, usize>,
        members: Vec<usize>,
        /// For requests without a hash key.
        next: AtomicUsize,
    },
}

/// The servers a request may still go to.
pub type Eligible<'a> = &'a dyn Fn(usize) -> bool;

impl Selector {
    pub fn round_robin(servers: &[Server], members: &[usize]) -> Selector {
        Selector::RoundRobin {
            schedule: smooth_schedule(servers, members),
            next: AtomicUsize::new(0),
        }
    }

    pub fn least_conn(members: &[usize]) -> Selector {
        Selector::LeastConn {
            members: members.to_vec(),
            next: AtomicUsize::new(0),
        }
    }

    pub fn hash(servers: &[Server], members: &[usize]) -> Selector {
        let backends: BTreeSet<Backend> = members
            .iter()
            .map(|&i| {
                let s = &servers[i].config;
                Backend {
                    addr: pingora::protocols::l4::socket::SocketAddr::Inet(s.address),
                    weight: s.weight as usize,
                    ext: Default::default(),
                }
            })
            .collect();
        Selector::Hash {
            ring: Arc::new(KetamaHashing::build(&backends)),
            by_addr: members
                .iter()
                .map(|&i| (servers[i].config.address, i))
                .collect(),
            members: members.to_vec(),
            next: AtomicUsize::new(0),
        }
    }

    /// Picks a server index, or None when no member is eligible.
    pub fn pick(&self, servers: &[Server], key: Option<&[u8]>, ok: Eligible) -> Option<usize> {
        match self {
            Selector::RoundRobin { schedule, next } => {
                if schedule.is_empty() {
                    return None;
                }
                let start = next.fetch_add(1, Relaxed);
                let order = (0..schedule.len()).map(|k| schedule[(start + k) % schedule.len()]);
                first_admitted(servers, order, ok)
            }
            Selector::LeastConn { members, next } => {
                let start = next.fetch_add(1, Relaxed);
                let admitted = |i: usize| ok(i) && servers[i].state.ramp.admit();
                least_conn(servers, members, start, &admitted)
                    .or_else(|| least_conn(servers, members, start, ok))
            }
            Selector::Hash {
                ring,
                by_addr,
                members,
                next,
            } => {
                let Some(key) = key else {
                    // No key (e.g. the header is absent): spread like round robin.
                    let start = next.fetch_add(1, Relaxed);
                    let order = (0..members.len()).map(|k| members[(start + k) % members.len()]);
                    return first_admitted(servers, order, ok);
                };
                let mut iter = ring.iter(key);
                // Walk the ring: the first eligible server clockwise from the key's point, so
                // keys of a departed server spread over the others and no other key moves. A
                // ramping server takes the key once its ramp passes the key's position.
                let mut fallback = None;
                for _ in 0..(members.len() * 160).max(16) {
                    let Some(b) = iter.next() else { break };
                    if let pingora::protocols::l4::socket::SocketAddr::Inet(addr) = b.addr {
                        if let Some(&i) = by_addr.get(&addr) {
                            if ok(i) {
                                if servers[i].state.ramp.admit_key(key) {
                                    return Some(i);
                                }
                                fallback.get_or_insert(i);
                            }
                        }
                    }
                }
                fallback
            }
        }
    }
}

/// The first eligible candidate that slow start admits; failing that, the first eligible one.
fn first_admitted(
    servers: &[Server],
    candidates: impl Iterator<Item = usize>,
    ok: Eligible,
) -> Option<usize> {
    let mut fallback = None;
    for i in candidates {
        if !ok(i) {
            continue;
        }
        if servers[i].state.ramp.admit() {
            return Some(i);
        }
        fallback.get_or_insert(i);
    }
    fallback
}

/// Weighted least connections: lowest in-flight / weight, ties broken by rotation.
fn least_conn(servers: &[Server], members: &[usize], start: usize, ok: Eligible) -> Option<usize> {
    let n = members.len();
    let mut best: Option<(usize, u64, u64)> = None;
    for k in 0..n {
        let i = members[(start + k) % n];
        if !ok(i) {
            continue;
        }
        let load = servers[i].state.inflight();
        let weight = u64::from(servers[i].config.weight);
        // load/weight < best_load/best_weight, without division.
        let better = match best {
            None => true,
            Some((_, bl, bw)) => (load as u128) * (bw as u128) < (bl as u128) * (weight as u128),
        };
        if better {
            best = Some((i, load, weight));
        }
    }
    best.map(|(i, _, _)| i)
}

/// nginx's smooth weighted round robin, unrolled into one cycle of `sum(weights)` slots:
/// weights 5,1,1 give a a b a c a a rather than a a a a a b c.
fn smooth_schedule(servers: &[Server], members: &[usize]) -> Vec<usize> {
    let weights: Vec<i64> = members
        .iter()
        .map(|&i| i64::from(servers[i].config.weight))
        .collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; members.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for k in 0..members.len() {
            current[k] += weights[k];
            if current[k] > current[best] {
                best = k;
            }
        }
        current[best] -= total;
        out.push(members[best]);
    }
    out
}
