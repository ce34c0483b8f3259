//! The agent's process trust, as the stand-in models it: a registry of the processes the job
//! runner launched (and the job each belongs to), executables trusted as if signed (the
//! agent's `Settings:AlternativeSignatures`), and the client id rules the broker applies.
//!
//! Every refusal is recorded with the rule it broke and the fix, for the operator's view.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::error::Error;
use crate::procs;

/// Which local processes may use the broker and Plugin Settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Any local process and any client id (a test harness's own process, say). Not the
    /// agent's behaviour: `run` never uses it.
    AnyLocalProcess,
    /// As the agent: only processes in the registry (the tasks the runner started, or pids
    /// registered by a harness) and processes whose executable is trusted; the client id
    /// must be `{jobId}_{token}_{pid}` with the process's own job and pid.
    Registry,
}

/// The agent's rule.
impl Default for Trust {
    fn default() -> Self {
        Trust::Registry
    }
}

impl FromStr for Trust {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "registry" => Ok(Trust::Registry),
            "any" => Ok(Trust::AnyLocalProcess),
            other => Err(Error::Invalid(format!(
                "unknown trust mode {other:?}: use registry (the agent's rule) or any"
            ))),
        }
    }
}

/// How the broker answers a publish to a topic the job does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// As the agent in most cases: a success PUBACK, and the message goes nowhere.
    Silent,
    /// PUBACK 0x87 (Not authorized), Mosquitto's own answer under MQTT v5.
    Visible,
}

/// The agent's usual answer.
impl Default for Denial {
    fn default() -> Self {
        Denial::Silent
    }
}

/// Why a connection or request was refused: shown in the operator's view.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub at: SystemTime,
    /// `broker`, `plugin-settings` or `jobs-api`.
    pub service: &'static str,
    /// The rule broken: `process-trust`, `client-id-shape`, `client-id-job`, `client-id-pid`;
    /// or `registration-race`, a launched task that came before its registration (the
    /// agent's normal behaviour, which a retry gets through).
    pub rule: &'static str,
    /// The client id, when the broker refused a CONNECT.
    pub client_id: Option<String>,
    /// For `registration-race`: the launched process that came too early.
    pub pid: Option<u32>,
    /// What was seen: the process, its executable, the mismatch.
    pub detail: String,
    pub fix: &'static str,
}

impl Refusal {
    /// A refusal of the registration race: expected, and passed by retrying (see
    /// [`crate::DevAgent::admitted_pids`] for whether the process did).
    pub fn is_registration_race(&self) -> bool {
        self.rule == "registration-race"
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} refused ({}): {}; fix: {}",
            self.service, self.rule, self.detail, self.fix
        )
    }
}

/// A process the agent knows: the registry entry it matched, or the trusted executable.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Admitted {
    pub pid: u32,
    /// The job the registry has it under; `None` for a trusted executable (any job).
    pub job: Option<String>,
}

/// A launched process: its job, and from when the registry vouches for it.
struct Entry {
    job: String,
    trusted_from: Instant,
}

/// The registry and the rules. Shared by the broker gate and the HTTPS endpoint.
pub(crate) struct Registry {
    pub trust: Trust,
    pids: Mutex<HashMap<u32, Entry>>,
    trusted_exes: Vec<PathBuf>,
    /// How long after its start a task is not yet registered: the agent's registration race
    /// (its runner registers a task right after starting it, so the task's first connection
    /// can come first). Zero: registered before the task can connect.
    registration_delay: Duration,
    /// Launched processes the registry has let through at least once.
    admitted: Mutex<HashSet<u32>>,
    refusals: Mutex<Vec<Refusal>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const UNSIGNED_FIX: &str = "make the process that logs the one the job runner starts (a script's \
     child is not trusted: make the task's command `kepmlog run -- SCRIPT`, so that kepmlog \
     logs the script's lines as the started process; or `exec` the logging program as the \
     script's last step), or sign it and list its thumbprint in Settings:AlternativeSignatures \
     (here: --trust-exe PATH)";

impl Registry {
    /// A registry enforcing `trust`; `trusted_exes` stand in for signed executables. Fails
    /// when `trust` is [`Trust::Registry`] and this OS cannot tell which process is behind a
    /// connection, rather than trusting every process without saying so.
    pub fn new(
        trust: Trust,
        trusted_exes: &[PathBuf],
        registration_delay: Duration,
    ) -> Result<Registry, Error> {
        if trust == Trust::Registry && !procs::attribution_available() {
            return Err(Error::Invalid(
                "process trust (--trust registry) needs to find the process behind each \
                 connection, which kepm-devagent does on Linux only: use --trust any here, and \
                 know that the agent will check what this machine cannot"
                    .into(),
            ));
        }
        let mut exes = Vec::new();
        for p in trusted_exes {
            let canon = std::fs::canonicalize(p).map_err(|e| {
                Error::Invalid(format!(
                    "--trust-exe {}: {e} (give the path of an existing executable)",
                    p.display()
                ))
            })?;
            exes.push(canon);
        }
        Ok(Registry {
            trust,
            pids: Mutex::new(HashMap::new()),
            trusted_exes: exes,
            registration_delay,
            admitted: Mutex::new(HashSet::new()),
            refusals: Mutex::new(Vec::new()),
        })
    }

    /// Adds a launched process under `job`, as the runner does right after starting a task;
    /// with a registration delay, it is trusted only once that has passed.
    pub fn register(&self, pid: u32, job: &str) {
        let entry = Entry {
            job: job.to_string(),
            trusted_from: Instant::now() + self.registration_delay,
        };
        lock(&self.pids).insert(pid, entry);
    }

    /// Forgets a process (its task ended).
    pub fn unregister(&self, pid: u32) {
        lock(&self.pids).remove(&pid);
    }

    /// The launched processes let through at least once: a `registration-race` refusal of one
    /// of these was retried past.
    pub fn admitted(&self) -> HashSet<u32> {
        lock(&self.admitted).clone()
    }

    /// Every refusal so far, oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        lock(&self.refusals).clone()
    }

    fn refuse(&self, r: Refusal) -> Refusal {
        lock(&self.refusals).push(r.clone());
        r
    }

    fn trusted_exe(&self, exe: Option<&Path>) -> bool {
        exe.is_some_and(|e| self.trusted_exes.iter().any(|t| t == e))
    }

    /// The first of `owners` the agent would trust.
    fn admit_any(&self, owners: &[u32]) -> Option<Admitted> {
        let pids = lock(&self.pids);
        let now = Instant::now();
        let found = owners.iter().find_map(|&pid| match pids.get(&pid) {
            Some(e) if e.trusted_from <= now => Some(Admitted {
                pid,
                job: Some(e.job.clone()),
            }),
            _ => self
                .trusted_exe(procs::exe_of(pid).as_deref())
                .then_some(Admitted { pid, job: None }),
        });
        if let Some(a) = &found {
            lock(&self.admitted).insert(a.pid);
        }
        found
    }

    /// Why none of `owners` was admitted: `registration-race` (with the pid) when one of them
    /// is a launched task whose registration has not completed yet (a retry gets through),
    /// else `process-trust`.
    fn untrusted_rule(&self, owners: &[u32]) -> (&'static str, Option<u32>) {
        let pids = lock(&self.pids);
        match owners.iter().find(|p| pids.contains_key(p)) {
            Some(&pid) => ("registration-race", Some(pid)),
            None => ("process-trust", None),
        }
    }

    fn describe(owners: &[u32]) -> String {
        owners
            .iter()
            .map(|p| match procs::exe_of(*p) {
                Some(e) => format!("pid {p} ({})", e.display()),
                None => format!("pid {p}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Plugin Settings: may the process behind `client` → `server` read it?
    pub fn admit_request(&self, client: SocketAddr, server: SocketAddr) -> Result<(), Refusal> {
        self.admit_plugin_tier("plugin-settings", client, server)
    }

    /// Any Plugin-tier endpoint (`service` names it in the refusal): the same rule as
    /// Plugin Settings.
    pub fn admit_plugin_tier(
        &self,
        service: &'static str,
        client: SocketAddr,
        server: SocketAddr,
    ) -> Result<(), Refusal> {
        if self.trust == Trust::AnyLocalProcess {
            return Ok(());
        }
        let owners = match procs::socket_owners(client, server) {
            Ok(o) => o,
            Err(e) => return Err(self.refusal(service, "process-trust", None, e)),
        };
        if self.admit_any(&owners).is_some() {
            return Ok(());
        }
        let (rule, pid) = self.untrusted_rule(&owners);
        let detail = Self::untrusted_detail(rule, &owners, "answered 403");
        Err(self.refuse_pid(service, rule, None, pid, detail))
    }

    fn untrusted_detail(rule: &str, owners: &[u32], answer: &str) -> String {
        if rule == "registration-race" {
            format!(
                "{} was launched by the job runner, whose registration has not completed yet \
                 (--registration-delay; {answer})",
                Self::describe(owners)
            )
        } else {
            format!(
                "{} is not a process the job runner launched, and its executable is not trusted \
                 ({answer})",
                Self::describe(owners)
            )
        }
    }

    fn refusal(
        &self,
        service: &'static str,
        rule: &'static str,
        client_id: Option<&str>,
        detail: String,
    ) -> Refusal {
        self.refuse_pid(service, rule, client_id, None, detail)
    }

    fn refuse_pid(
        &self,
        service: &'static str,
        rule: &'static str,
        client_id: Option<&str>,
        pid: Option<u32>,
        detail: String,
    ) -> Refusal {
        let fix = match rule {
            "client-id-shape" => {
                "form the client id as {KEEPER_JOB_ID}_{Token}_{pid}: three parts, no `_` in the \
                 job id or the token (kepmlog does this)"
            }
            "client-id-job" => "use the job id from KEEPER_JOB_ID as the first part",
            "client-id-pid" => {
                "put the connecting process's own pid last (a library linked into the task does; \
                 a helper process must use its own pid and be trusted itself)"
            }
            "registration-race" => {
                "retry the first connection and Plugin Settings request for a second or two, as \
                 the vendor's guide asks (the agent registers a task just after starting it); \
                 kepmlog does, for both"
            }
            _ => UNSIGNED_FIX,
        };
        self.refuse(Refusal {
            at: SystemTime::now(),
            service,
            rule,
            client_id: client_id.map(str::to_string),
            pid,
            detail,
            fix,
        })
    }

    /// The broker: may the process behind `client` → `server` connect as `client_id`?
    pub fn admit_client(
        &self,
        client: SocketAddr,
        server: SocketAddr,
        client_id: &str,
    ) -> Result<(), Refusal> {
        if self.trust == Trust::AnyLocalProcess {
            return Ok(());
        }
        let refuse = |rule, detail| Err(self.refusal("broker", rule, Some(client_id), detail));
        let parts: Vec<&str> = client_id.split('_').collect();
        let [job, token, pid] = parts.as_slice() else {
            return refuse(
                "client-id-shape",
                format!(
                    "client id {client_id:?} splits into {} part(s) at `_`, not 3 \
                     (job id, token, pid)",
                    parts.len()
                ),
            );
        };
        if job.is_empty() || token.is_empty() || pid.is_empty() {
            return refuse(
                "client-id-shape",
                format!("client id {client_id:?} has an empty part"),
            );
        }
        let Ok(claimed_pid) = pid.parse::<u32>() else {
            return refuse(
                "client-id-shape",
                format!("client id {client_id:?}: its last part {pid:?} is not a decimal pid"),
            );
        };
        let owners = match procs::socket_owners(client, server) {
            Ok(o) => o,
            Err(e) => return refuse("process-trust", e),
        };
        let Some(admitted) = self.admit_any(&owners) else {
            let (rule, pid) = self.untrusted_rule(&owners);
            let detail = Self::untrusted_detail(rule, &owners, "CONNACK 0x87");
            return Err(self.refuse_pid("broker", rule, Some(client_id), pid, detail));
        };
        let wine = procs::exe_of(admitted.pid).is_some_and(|e| procs::is_wine(&e));
        // Under Wine the client id carries the Windows pid, which Linux cannot see: the
        // process is still checked, the number only for being one.
        if !wine && !owners.contains(&claimed_pid) {
            return refuse(
                "client-id-pid",
                format!(
                    "client id {client_id:?} names pid {claimed_pid}, but the connection belongs \
                     to {}",
                    Self::describe(&owners)
                ),
            );
        }
        let known_job = match &admitted.job {
            Some(j) => j == job,
            None => lock(&self.pids).values().any(|e| e.job == *job),
        };
        if !known_job {
            let expected = admitted
                .job
                .clone()
                .unwrap_or_else(|| "a job the agent is running".into());
            return refuse(
                "client-id-job",
                format!(
                    "client id {client_id:?} names job {job:?}; the process belongs to {expected}"
                ),
            );
        }
        Ok(())
    }
}
