//! Capabilities the runtime can grant: only those it holds itself.

use crate::plan::process::ProcessPlan;

/// Leave out capabilities this runtime does not hold itself (so cannot grant), with a warning:
/// config.md says runtimes SHOULD NOT fail for them. A process in a user namespace that the
/// runtime creates or joins gets every capability there that the bounding set leaves (which is
/// how an unprivileged caller grants capabilities at all).
pub fn restrict_to_grantable(process: &mut ProcessPlan, in_user_namespace: bool) {
    let Some(caps) = process.caps.as_mut() else { return };
    let set = if in_user_namespace { caps::CapSet::Bounding } else { caps::CapSet::Permitted };
    let Ok(held) = caps::read(None, set) else { return };
    let available = held.iter().fold(0u64, |m, c| m | c.bitmask());
    let wanted = caps.effective | caps.permitted | caps.inheritable | caps.ambient;
    let missing = wanted & !available;
    if missing == 0 {
        return;
    }
    let names: Vec<String> =
        caps::all().into_iter().filter(|c| missing & c.bitmask() != 0).map(|c| c.to_string()).collect();
    crate::logging::warn(&format!("capabilities not available to the runtime, not granted: {}", names.join(", ")));
    caps.effective &= available;
    caps.permitted &= available;
    caps.inheritable &= available;
    caps.ambient &= available;
}
