//! The cgroup manager: places a container in its cgroup (every v1 hierarchy, the v2 unified
//! hierarchy, or both in the hybrid layout), applies `linux.resources`, and finds it again from
//! the saved state for pause/resume, ps, events, update, kill --all and delete.
//!
//! Layout and paths: see [`layout`] and [`path`]. Each controller's resources are written to
//! the v1 hierarchy that has the controller; a controller no v1 hierarchy has is used on the
//! cgroup2 side when it is available there (pure v2, or e.g. hugetlb in this machine's hybrid
//! layout). Only the files of the fields that are set are written.
//!
//! How spec values become cgroup files (v1 | v2); "ignored" fields have no v2 equivalent and
//! are skipped as runc does ([`Manager::ignored_resources`] lists them for a warning):
//!
//! | linux.resources        | v1                                     | v2                                        |
//! |------------------------|----------------------------------------|-------------------------------------------|
//! | memory.limit           | memory.limit_in_bytes                  | memory.max (-1 → "max")                   |
//! | memory.reservation     | memory.soft_limit_in_bytes             | memory.low                                |
//! | memory.swap (mem+swap) | memory.memsw.limit_in_bytes            | memory.swap.max = swap − limit            |
//! | memory.swappiness      | memory.swappiness (0..=100)            | ignored                                   |
//! | memory.kernel          | memory.kmem.limit_in_bytes, skipped where the kernel dropped it | ignored          |
//! | memory.kernelTCP       | memory.kmem.tcp.limit_in_bytes         | ignored                                   |
//! | memory.disableOOMKiller| memory.oom_control                     | ignored                                   |
//! | memory.useHierarchy    | memory.use_hierarchy                   | ignored (always hierarchical)             |
//! | memory.checkBeforeUpdate | update: refuse a limit ≤ usage       | same, with memory.current                 |
//! | cpu.shares             | cpu.shares (2..=262144)                | cpu.weight, [`convert::shares_to_weight`] |
//! | cpu.quota, cpu.period  | cpu.cfs_quota_us, cpu.cfs_period_us    | cpu.max "quota period"                    |
//! | cpu.burst              | cpu.cfs_burst_us                       | cpu.max.burst                             |
//! | cpu.realtime*          | cpu.rt_runtime_us, cpu.rt_period_us    | ignored                                   |
//! | cpu.idle               | cpu.idle                               | cpu.idle                                  |
//! | cpu.cpus, cpu.mems     | cpuset.cpus, cpuset.mems (new dirs copy the parent's first) | same                 |
//! | pids.limit             | pids.max (negative → "max", 0 = unset) | same                                      |
//! | blockIO.weight         | blkio.weight or blkio.bfq.weight       | io.bfq.weight, else io.weight = 1 + (w − 10)·9999/990 |
//! | blockIO.leafWeight*    | blkio.leaf_weight*, skipped where the kernel dropped it | ignored                  |
//! | blockIO.weightDevice   | blkio[.bfq].weight_device "M:m w"      | io.bfq.weight "M:m w", else io.weight "M:m converted" |
//! | blockIO.throttle*      | blkio.throttle.{read,write}_{bps,iops}_device | io.max "M:m rbps=…" (wbps, riops, wiops) |
//! | hugepageLimits         | hugetlb.<size>.limit_in_bytes (+ .rsvd.) | hugetlb.<size>.max (+ .rsvd.)           |
//! | network.classID        | net_cls.classid                        | ignored                                   |
//! | network.priorities     | net_prio.ifpriomap "name prio"         | ignored                                   |
//! | rdma                   | rdma.max "dev hca_handle=N hca_object=M" | same                                    |
//! | unified                | the cgroup2 directory when there is one, else an error | written as given, last    |
//! | devices                | devices.deny / devices.allow           | eBPF device filter ([`devices`])          |
//!
//! Rootless: the container gets a cgroup only where the caller may write one ([`Manager::delegated`]);
//! otherwise it stays in the caller's cgroup and its `cgroup` mount shows that ([`Manager::caller_view`]).
//!
//! `update` writes the fields present in the partial resources it gets and leaves the rest;
//! like runc it does not touch devices.

pub(crate) mod convert;
pub(crate) mod devices;
mod dir;
mod error;
mod events;
mod freezer;
mod kill;
mod layout;
mod manager;
mod path;
mod resources;
mod rootless;
mod stats;
pub(crate) mod systemd;
mod update;

pub use convert::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2};
pub use error::CgroupError;
pub use events::{Event, EventsEnd, OomWait, OomWatcher, watch_events};
pub use freezer::{FreezerState, FrozenBy};
pub use manager::{CgroupRequest, CgroupState, ContainerView, Manager, V1Mount};
pub use stats::Stats;
pub use update::{UpdateFlags, parse_resources, parse_size};
