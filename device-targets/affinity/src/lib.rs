//! Which CPUs a thread may run on. A board's agent is held to the cores a rig gives it, and the
//! bench holds both sides of a comparison to one CPU: on a shared machine, where a thread runs
//! decides what it is timed against.
//!
//! A mask set here covers the calling thread and every thread or process it starts afterwards
//! (Linux hands the mask on), so an agent sets it before its runtime starts any thread.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AffinityError {
    #[error("read this thread's CPUs: {0}")]
    Read(std::io::Error),
    #[error("hold this thread to CPUs {}: {source}", list(.cpus))]
    Set {
        cpus: Vec<u32>,
        source: std::io::Error,
    },
    /// The kernel keeps a mask to the CPUs online and allowed to the process (its cgroup): it
    /// refuses a mask with none of them and drops the rest of one with some without a word, so
    /// the mask is read back. `got`: what the thread runs on now.
    #[error(
        "hold this thread to CPUs {}: {} not among those it may run on (it runs on {})",
        list(.wanted), which_are(.missing), list(.got)
    )]
    NotAllowed {
        wanted: Vec<u32>,
        missing: Vec<u32>,
        got: Vec<u32>,
    },
    #[error("choose the CPUs a thread runs on: not supported on this operating system")]
    Unsupported,
}

/// `0,2,3`: how the agent's `--cpus` and the rig's messages spell a set of CPUs.
pub fn list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `CPU 3 is` or `CPUs 3,5 are`.
fn which_are(cpus: &[u32]) -> String {
    match cpus {
        [one] => format!("CPU {one} is"),
        many => format!("CPUs {} are", list(many)),
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::AffinityError;

    /// CPUs a `cpu_set_t` holds.
    const SET_SIZE: usize = libc::CPU_SETSIZE as usize;

    /// The CPUs the calling thread may run on, ascending.
    pub fn current() -> Result<Vec<u32>, AffinityError> {
        // SAFETY: cpu_set_t is plain bits, valid zeroed; sched_getaffinity on pid 0 (this
        // thread) writes only the set passed with its size.
        let set = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Err(AffinityError::Read(std::io::Error::last_os_error()));
            }
            set
        };
        Ok((0..SET_SIZE)
            // SAFETY: `cpu` is below CPU_SETSIZE, the set's size.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .map(|cpu| cpu as u32)
            .collect())
    }

    /// Holds the calling thread, and what it starts from now on, to `cpus`; fails unless it got
    /// every one of them (the thread then keeps those it got).
    pub fn hold_to(cpus: &[u32]) -> Result<(), AffinityError> {
        let set_error = |source| AffinityError::Set {
            cpus: cpus.to_vec(),
            source,
        };
        if cpus.is_empty() || cpus.iter().any(|&c| c as usize >= SET_SIZE) {
            return Err(set_error(std::io::Error::from(
                std::io::ErrorKind::InvalidInput,
            )));
        }
        // SAFETY: cpu_set_t is plain bits, valid zeroed; every CPU is below CPU_SETSIZE (checked
        // above); sched_setaffinity on pid 0 (this thread) reads only the set passed with its size.
        let status = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &cpu in cpus {
                libc::CPU_SET(cpu as usize, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if status != 0 {
            let refused = std::io::Error::last_os_error();
            // EINVAL: none of them may be used; the check below names them.
            if refused.raw_os_error() != Some(libc::EINVAL) {
                return Err(set_error(refused));
            }
        }
        let got = current()?;
        let missing: Vec<u32> = cpus.iter().copied().filter(|c| !got.contains(c)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(AffinityError::NotAllowed {
                wanted: cpus.to_vec(),
                missing,
                got,
            })
        }
    }
}

#[cfg(target_os = "linux")]
pub use linux::{current, hold_to};

#[cfg(not(target_os = "linux"))]
pub fn current() -> Result<Vec<u32>, AffinityError> {
    Err(AffinityError::Unsupported)
}

#[cfg(not(target_os = "linux"))]
pub fn hold_to(_cpus: &[u32]) -> Result<(), AffinityError> {
    Err(AffinityError::Unsupported)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_held_to_one_cpu_runs_there_and_its_threads_inherit_it() {
        std::thread::spawn(|| {
            let all = current().unwrap();
            let last = *all.last().unwrap();
            hold_to(&[last]).unwrap();
            assert_eq!(current().unwrap(), [last]);
            let child = std::thread::spawn(current).join().unwrap().unwrap();
            assert_eq!(child, [last]);
            // A thread held to one CPU may widen its mask again.
            hold_to(&all).unwrap();
            assert_eq!(current().unwrap(), all);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_cpu_the_machine_lacks_is_named_and_the_mask_is_unchanged() {
        std::thread::spawn(|| {
            let before = current().unwrap();
            let absent = 1023;
            assert!(!before.contains(&absent), "a machine with 1024 CPUs");
            let err = hold_to(&[absent]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "hold this thread to CPUs 1023: CPU 1023 is not among those it may run on (it runs on {})",
                    list(&before)
                )
            );
            assert_eq!(current().unwrap(), before);
            // One CPU it has and one it lacks: the kernel takes the one and drops the other.
            let err = hold_to(&[before[0], absent]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "hold this thread to CPUs {},1023: CPU 1023 is not among those it may run on (it runs on {})",
                    before[0], before[0]
                )
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn cpu_lists_are_comma_separated() {
        assert_eq!(list(&[0, 2, 3]), "0,2,3");
        assert_eq!(list(&[]), "");
        assert_eq!(which_are(&[3]), "CPU 3 is");
        assert_eq!(which_are(&[3, 5]), "CPUs 3,5 are");
    }
}
