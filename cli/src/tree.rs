//! The child of `kepmlog run` and everything it starts, as one unit that can be ended:
//! a process group on Unix, a Job Object on Windows.

use std::io;
use std::process::{Child, Command};

pub struct Tree {
    #[cfg(unix)]
    pgid: i32,
    /// Closing the job's handle ends every process in it (KILL_ON_JOB_CLOSE): the agent's
    /// kill of kepmlog at `timeoutSeconds` closes it too, so the script cannot outlive us.
    #[cfg(windows)]
    job: Option<win32job::Job>,
}

/// Starts `cmd` as the root of a new tree.
pub fn spawn(cmd: &mut Command) -> io::Result<(Child, Tree)> {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own group, so a signal reaches the script and whatever it started, and a
        // terminal's Ctrl-C reaches kepmlog first (which forwards it, then flushes).
        cmd.process_group(0);
        let child = cmd.spawn()?;
        let pgid = i32::try_from(child.id()).map_err(io::Error::other)?;
        Ok((child, Tree { pgid }))
    }
    #[cfg(windows)]
    {
        use std::os::windows::io::AsRawHandle;
        let mut info = win32job::ExtendedLimitInfo::new();
        info.limit_kill_on_job_close();
        let job = win32job::Job::create_with_limit_info(&info)
            .map_err(|e| io::Error::other(format!("creating a Job Object: {e}")))?;
        let child = cmd.spawn()?;
        // Between the spawn and this call the child runs outside the job; a grandchild it
        // starts in that window escapes. Starting it suspended would need raw Win32 calls
        // (unsafe), which this crate forbids.
        if let Err(e) = job.assign_process(child.as_raw_handle() as isize) {
            return Err(io::Error::other(format!(
                "putting the child into a Job Object: {e}"
            )));
        }
        Ok((child, Tree { job: Some(job) }))
    }
}

impl Tree {
    /// Asks the tree to stop: SIGTERM (or the signal received) to the group on Unix; on
    /// Windows there is no such request to a console program without raw calls, so it is
    /// ended at once.
    pub fn signal(&mut self, sig: Stop) {
        #[cfg(unix)]
        {
            use nix::sys::signal::{killpg, Signal};
            let s = match sig {
                Stop::Term => Signal::SIGTERM,
                Stop::Int => Signal::SIGINT,
            };
            // ESRCH: the group is already gone, which is what we want.
            let _ = killpg(nix::unistd::Pid::from_raw(self.pgid), s);
        }
        #[cfg(windows)]
        {
            let _ = sig;
            self.kill();
        }
    }

    /// Ends the tree for sure.
    pub fn kill(&mut self) {
        #[cfg(unix)]
        {
            use nix::sys::signal::{killpg, Signal};
            let _ = killpg(nix::unistd::Pid::from_raw(self.pgid), Signal::SIGKILL);
        }
        #[cfg(windows)]
        {
            // Dropping the job closes its last handle: KILL_ON_JOB_CLOSE ends every process.
            self.job = None;
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Stop {
    Term,
    Int,
}
