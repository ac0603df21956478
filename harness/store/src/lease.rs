//! Board leases in the shared store: a run holds a board for a time-to-live and renews it by
//! heartbeat; a lease whose holder stopped renewing (killed, its host gone) expires and may be
//! taken. Runs waiting for a busy board queue in ticket order (FIFO); a waiter that stops renewing
//! its place drops out. A board taken out of rotation (a failed health check, or by hand) is leased
//! to nobody until put back. Times are milliseconds by the database's clock, so runners whose
//! clocks disagree still agree on who holds what.
//!
//! Acquiring and releasing are one statement each (one round trip to a server), atomic on their
//! own: the insert-or-take-over-if-expired decides between racing runners.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::backend::{Row, vals};
use crate::{DbError, Result, Store, StoreError, all, sql};

/// Who holds (or waits for) a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub user: String,
    /// From the CI's own variables (GitHub Actions, GitLab, Jenkins, Buildkite, CircleCI), or
    /// `$GAUNTLET_CI_JOB`.
    pub ci_job: Option<String>,
    pub run_id: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {} (user {}", self.pid, self.host, self.user)?;
        if let Some(job) = &self.ci_job {
            write!(f, ", CI job {job}")?;
        }
        if let Some(run) = &self.run_id {
            write!(f, ", run {run}")?;
        }
        f.write_str(")")
    }
}

/// This machine's name, as the kernel has it.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The job id a CI service gives in its environment, the first of the usual variables set.
fn ci_job(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(job) = get("GAUNTLET_CI_JOB") {
        return Some(job);
    }
    if let Some(run) = get("GITHUB_RUN_ID") {
        return Some(match get("GITHUB_JOB") {
            Some(job) => format!("github {run}/{job}"),
            None => format!("github {run}"),
        });
    }
    [
        ("CI_JOB_ID", "gitlab"),
        ("BUILDKITE_JOB_ID", "buildkite"),
        ("CIRCLE_WORKFLOW_JOB_ID", "circleci"),
        ("BUILD_TAG", "jenkins"),
    ]
    .iter()
    .find_map(|(var, ci)| get(var).map(|id| format!("{ci} {id}")))
}

impl Holder {
    /// This process, on this host, as this user.
    pub fn current(run_id: Option<&str>) -> Holder {
        let env = |k: &str| std::env::var(k).ok();
        Holder {
            host: host_name(),
            pid: std::process::id(),
            user: env("USER")
                .or_else(|| env("LOGNAME"))
                .unwrap_or_else(|| "unknown".into()),
            ci_job: ci_job(env),
            run_id: run_id.map(str::to_string),
        }
    }
}

/// A board held until `expires_ms` unless renewed.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub board: String,
    /// Proves this holder's claim when renewing or releasing.
    pub token: String,
    pub holder: Holder,
    pub acquired_ms: i64,
    pub renewed_ms: i64,
    pub expires_ms: i64,
}

/// A place in a board's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub board: String,
    pub ticket: i64,
    pub holder: Holder,
    pub enqueued_ms: i64,
    /// What the waiter waits for when it is more than this board: `N board(s) of pool { … }`.
    pub wants: Option<String>,
}

const TICKET_COLUMNS: &str =
    "board, ticket, host, pid, user_name, ci_job, run_id, enqueued_ms, wants";

fn ticket(r: &Row) -> Result<Ticket, DbError> {
    Ok(Ticket {
        board: r.text(0)?,
        ticket: r.int(1)?,
        holder: holder_columns(r)?,
        enqueued_ms: r.int(7)?,
        wants: r.opt_text(8)?,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutOfRotation {
    pub board: String,
    pub reason: String,
    pub by: String,
    pub since_ms: i64,
}

/// Any `count` of `boards`, for [`Store::acquire_pool`].
#[derive(Debug, Clone, Copy)]
pub struct Pool<'a> {
    /// What the pool is called in messages (its labels, `k=v, …`).
    pub name: &'a str,
    /// Lease keys, in the order they are tried.
    pub boards: &'a [String],
    pub count: usize,
}

/// A forced release or a rotation change, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseEvent {
    pub board: String,
    /// `forced-release`, `out-of-rotation` or `back-in-rotation`.
    pub event: String,
    /// The holder a forced release took the board from.
    pub holder: Option<String>,
    pub by: String,
    pub reason: String,
    pub at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "lease board `{board}`: held by {} since {since_ms} ms (Unix time); waited {waited:?}",
        holder
    )]
    Busy {
        board: String,
        holder: Box<Holder>,
        since_ms: i64,
        waited: Duration,
    },
    #[error(
        "lease board `{board}`: it is out of rotation since {since_ms} ms (Unix time): {reason} (by {by}); `gauntlet lease return {board}` puts it back"
    )]
    OutOfRotation {
        board: String,
        reason: String,
        by: String,
        since_ms: i64,
    },
    #[error(
        "lease {count} board(s) of pool {{ {pool} }}: {} free of {}; waited {waited:?}: {}",
        boards.len() - taken.len(), boards.len(), taken.join("; ")
    )]
    PoolBusy {
        /// The pool's labels, as `k=v, …`.
        pool: String,
        count: usize,
        boards: Vec<String>,
        /// Why each board that is not free is not, e.g. "`b1` held by … since …".
        taken: Vec<String>,
        waited: Duration,
    },
    #[error("release board `{board}`: `{field}` must not be empty")]
    EmptyField { board: String, field: &'static str },
}

/// The holder in columns 2 to 6 (host, pid, user_name, ci_job, run_id) of a lease or ticket row.
fn holder_columns(r: &Row) -> Result<Holder, DbError> {
    Ok(Holder {
        host: r.text(2)?,
        pid: u32::try_from(r.int(3)?).unwrap_or(0),
        user: r.text(4)?,
        ci_job: r.opt_text(5)?,
        run_id: r.opt_text(6)?,
    })
}

const LEASE_COLUMNS: &str =
    "board, token, host, pid, user_name, ci_job, run_id, acquired_ms, renewed_ms, expires_ms";

fn lease(r: &Row) -> Result<Lease, DbError> {
    Ok(Lease {
        board: r.text(0)?,
        token: r.text(1)?,
        holder: holder_columns(r)?,
        acquired_ms: r.int(7)?,
        renewed_ms: r.int(8)?,
        expires_ms: r.int(9)?,
    })
}

/// Unguessable enough that no other holder presents it by accident.
fn new_token(board: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{board}/{}/{nanos}/{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// How often a waiter looks again and renews its place in the queue.
fn poll_interval(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(50), Duration::from_millis(500))
}

/// A waiter that has not renewed its place for this long is gone (killed while waiting); generous,
/// since a live waiter on a loaded machine may be late, and a gone one only delays the next.
fn waiter_stale(ttl: Duration) -> Duration {
    ttl.max(Duration::from_secs(3))
}

impl Store {
    /// Takes `board` for `ttl` if it is free, its lease expired, and no live waiter queued before
    /// `ticket` (any live waiter, without one). `Ok(None)`: someone else has it or is first.
    pub fn try_acquire_lease(
        &self,
        board: &str,
        holder: &Holder,
        ttl: Duration,
        ticket: Option<&Ticket>,
    ) -> Result<Option<Lease>> {
        let got = self.take_lease(board, holder, ttl, ticket)?;
        if let (Some(_), Some(ticket)) = (&got, ticket) {
            self.leave_queue(ticket)?;
        }
        Ok(got)
    }

    /// [`Store::try_acquire_lease`] without leaving the queue: a pool waiter keeps its places
    /// until it has all the boards it needs.
    fn take_lease(
        &self,
        board: &str,
        holder: &Holder,
        ttl: Duration,
        ticket: Option<&Ticket>,
    ) -> Result<Option<Lease>> {
        let what = || format!("lease board `{board}`");
        let now = self.dialect().now_ms();
        let token = new_token(board);
        let stale = ms(waiter_stale(ttl));
        let rows = self.query(
            what,
            &format!(
                "INSERT INTO leases ({LEASE_COLUMNS}) \
                 SELECT ?1, ?2, ?3, CAST(?4 AS BIGINT), ?5, ?6, ?7, n.now, n.now, n.now + ?8 \
                 FROM (SELECT {now} AS now) n \
                 WHERE NOT EXISTS (SELECT 1 FROM boards_out o WHERE o.board = ?1) \
                 AND NOT EXISTS (SELECT 1 FROM lease_queue q WHERE q.board = ?1 \
                      AND q.ticket < ?9 AND q.seen_ms > n.now - ?10) \
                 ON CONFLICT (board) DO UPDATE SET token = excluded.token, host = excluded.host, \
                 pid = excluded.pid, user_name = excluded.user_name, ci_job = excluded.ci_job, \
                 run_id = excluded.run_id, acquired_ms = excluded.acquired_ms, \
                 renewed_ms = excluded.renewed_ms, expires_ms = excluded.expires_ms \
                 WHERE leases.expires_ms <= excluded.acquired_ms \
                 RETURNING {LEASE_COLUMNS}"
            ),
            vals![
                board,
                &token,
                &holder.host,
                holder.pid,
                &holder.user,
                holder.ci_job.as_deref(),
                holder.run_id.as_deref(),
                ms(ttl),
                ticket.map_or(i64::MAX, |t| t.ticket),
                stale,
            ],
        )?;
        rows.first().map(lease).transpose().map_err(sql(what))
    }

    /// The lease on `board`, if it has not expired.
    pub fn lease(&self, board: &str) -> Result<Option<Lease>> {
        let what = || format!("read the lease of board `{board}`");
        let now = self.dialect().now_ms();
        let rows = self.query(
            what,
            &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE board = ?1 AND expires_ms > {now}"),
            vals![board],
        )?;
        rows.first().map(lease).transpose().map_err(sql(what))
    }

    /// Every lease that has not expired, by board.
    pub fn leases(&self) -> Result<Vec<Lease>> {
        let what = || "list leases".to_string();
        let now = self.dialect().now_ms();
        let rows = self.query(
            what,
            &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE expires_ms > {now} ORDER BY board"),
            &[],
        )?;
        all(rows, lease).map_err(sql(what))
    }

    /// Extends a held lease by `ttl` from now; `false` when it was lost (expired and taken, or
    /// released by force).
    pub fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        let what = || format!("renew the lease of board `{}`", lease.board);
        let now = self.dialect().now_ms();
        let n = self
            .db()
            .execute(
                &format!(
                    "UPDATE leases SET renewed_ms = {now}, expires_ms = {now} + ?3 \
                     WHERE board = ?1 AND token = ?2"
                ),
                vals![&lease.board, &lease.token, ms(ttl)],
            )
            .map_err(sql(what))?;
        Ok(n == 1)
    }

    /// Gives the board back; `false` when it was no longer this holder's.
    pub fn release_lease(&self, lease: &Lease) -> Result<bool> {
        Ok(self.release_lease_at(lease)?.is_some())
    }

    /// Gives the board back, returning when (database clock, ms) the statement that freed it ran:
    /// no later holder's `acquired_ms` can be earlier. `None`: it was no longer this holder's.
    pub fn release_lease_at(&self, lease: &Lease) -> Result<Option<i64>> {
        let what = || format!("release board `{}`", lease.board);
        let now = self.dialect().now_ms();
        let rows = self.query(
            what,
            &format!("DELETE FROM leases WHERE board = ?1 AND token = ?2 RETURNING {now}"),
            vals![&lease.board, &lease.token],
        )?;
        rows.first()
            .map(|r| r.int(0))
            .transpose()
            .map_err(sql(what))
    }

    /// Takes a place at the back of `board`'s queue.
    pub fn enqueue(&self, board: &str, holder: &Holder) -> Result<Ticket> {
        self.enqueue_for(board, holder, None)
    }

    /// [`Store::enqueue`], saying what else the waiter waits for (a pool).
    fn enqueue_for(&self, board: &str, holder: &Holder, wants: Option<&str>) -> Result<Ticket> {
        let what = || format!("queue for board `{board}`");
        let now = self.dialect().now_ms();
        let rows = self.query(
            what,
            &format!(
                "INSERT INTO lease_queue (board, host, pid, user_name, ci_job, run_id, wants, \
                 enqueued_ms, seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {now}, {now}) \
                 RETURNING {TICKET_COLUMNS}"
            ),
            vals![
                board,
                &holder.host,
                holder.pid,
                &holder.user,
                holder.ci_job.as_deref(),
                holder.run_id.as_deref(),
                wants,
            ],
        )?;
        ticket(&rows[0]).map_err(sql(what))
    }

    /// Tells the queue this waiter is still there.
    pub fn keep_waiting(&self, ticket: &Ticket) -> Result<()> {
        let what = || format!("wait for board `{}`", ticket.board);
        let now = self.dialect().now_ms();
        self.db()
            .execute(
                &format!("UPDATE lease_queue SET seen_ms = {now} WHERE ticket = ?1"),
                vals![ticket.ticket],
            )
            .map_err(sql(what))?;
        Ok(())
    }

    pub fn leave_queue(&self, ticket: &Ticket) -> Result<()> {
        let what = || format!("leave the queue of board `{}`", ticket.board);
        self.db()
            .execute(
                "DELETE FROM lease_queue WHERE ticket = ?1",
                vals![ticket.ticket],
            )
            .map_err(sql(what))?;
        Ok(())
    }

    /// Live waiters for `board`, first first.
    pub fn queue(&self, board: &str, ttl: Duration) -> Result<Vec<Ticket>> {
        self.waiting(Some(board), ttl)
    }

    /// Live waiters for every board, by board, first first.
    pub fn waiters(&self, ttl: Duration) -> Result<Vec<Ticket>> {
        self.waiting(None, ttl)
    }

    fn waiting(&self, board: Option<&str>, ttl: Duration) -> Result<Vec<Ticket>> {
        let what = || match board {
            Some(board) => format!("read the queue of board `{board}`"),
            None => "read the queues of the boards".to_string(),
        };
        let now = self.dialect().now_ms();
        let rows = self.query(
            what,
            &format!(
                "SELECT {TICKET_COLUMNS} FROM lease_queue \
                 WHERE (CAST(?1 AS TEXT) IS NULL OR board = ?1) AND seen_ms > {now} - ?2 \
                 ORDER BY board, ticket"
            ),
            vals![board, ms(waiter_stale(ttl))],
        )?;
        all(rows, ticket).map_err(sql(what))
    }

    /// Takes `board` for `ttl`, waiting in its queue up to `wait` (zero: fail at once) and calling
    /// `waiting` with the holder each time it looks and finds the board busy.
    pub fn acquire_lease(
        &self,
        board: &str,
        holder: &Holder,
        ttl: Duration,
        wait: Duration,
        mut waiting: impl FnMut(&Lease, &Ticket),
    ) -> Result<Lease> {
        let started = Instant::now();
        // The common case, a free board, is this one statement; why it was refused is looked
        // up only when it was.
        if let Some(lease) = self.try_acquire_lease(board, holder, ttl, None)? {
            return Ok(lease);
        }
        self.refuse_out_of_rotation(board)?;
        let busy = |store: &Store| -> Result<StoreError> {
            let current = store.lease(board)?;
            Ok(match current {
                Some(l) => LeaseError::Busy {
                    board: board.into(),
                    holder: Box::new(l.holder),
                    since_ms: l.acquired_ms,
                    waited: started.elapsed(),
                }
                .into(),
                // Free but promised to an earlier waiter.
                None => LeaseError::Busy {
                    board: board.into(),
                    holder: Box::new(Holder {
                        host: "-".into(),
                        pid: 0,
                        user: "an earlier waiter".into(),
                        ci_job: None,
                        run_id: None,
                    }),
                    since_ms: 0,
                    waited: started.elapsed(),
                }
                .into(),
            })
        };
        if self.reap_dead_holder(board)?
            && let Some(lease) = self.try_acquire_lease(board, holder, ttl, None)?
        {
            return Ok(lease);
        }
        if wait.is_zero() {
            return Err(busy(self)?);
        }
        let ticket = self.enqueue(board, holder)?;
        let outcome = self.wait_in_queue(board, holder, ttl, wait, started, &ticket, &mut waiting);
        match outcome {
            Ok(Some(lease)) => Ok(lease),
            Ok(None) => {
                self.leave_queue(&ticket)?;
                Err(busy(self)?)
            }
            Err(e) => {
                let _ = self.leave_queue(&ticket);
                Err(e)
            }
        }
    }

    /// Records `holder` as the holder of `board` where another guard decides who may use it (the
    /// board's `flock`, with a store of one host's own): as [`Store::acquire_lease`] without
    /// waiting, except that a board another run holds is not refused but left to that guard
    /// (`Ok(None)`). A board out of rotation is refused all the same.
    pub fn record_lease(
        &self,
        board: &str,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<Option<Lease>> {
        if let Some(lease) = self.try_acquire_lease(board, holder, ttl, None)? {
            return Ok(Some(lease));
        }
        self.refuse_out_of_rotation(board)?;
        if self.reap_dead_holder(board)? {
            return self.try_acquire_lease(board, holder, ttl, None);
        }
        Ok(None)
    }

    fn refuse_out_of_rotation(&self, board: &str) -> Result<()> {
        match self.rotation(board)? {
            Some(out) => Err(LeaseError::OutOfRotation {
                board: board.into(),
                reason: out.reason,
                by: out.by,
                since_ms: out.since_ms,
            }
            .into()),
            None => Ok(()),
        }
    }

    /// Looks again every poll interval until the board is this ticket's or `wait` has passed.
    #[allow(clippy::too_many_arguments)]
    fn wait_in_queue(
        &self,
        board: &str,
        holder: &Holder,
        ttl: Duration,
        wait: Duration,
        started: Instant,
        ticket: &Ticket,
        waiting: &mut dyn FnMut(&Lease, &Ticket),
    ) -> Result<Option<Lease>> {
        loop {
            if let Some(lease) = self.try_acquire_lease(board, holder, ttl, Some(ticket))? {
                return Ok(Some(lease));
            }
            if started.elapsed() >= wait {
                return Ok(None);
            }
            if let Some(current) = self.lease(board)? {
                waiting(&current, ticket);
            }
            self.reap_dead_holder(board)?;
            std::thread::sleep(poll_interval(ttl).min(wait.saturating_sub(started.elapsed())));
            self.keep_waiting(ticket)?;
        }
    }

    /// Takes `count` of `boards` (in their order, skipping boards leased or out of rotation),
    /// all at once: a waiter holds none of them until it can have all, so two waiters each
    /// holding a part cannot block each other. Waits up to `wait` with a place in every board's
    /// queue, so the boards go to the waiters in arrival order; `waiting` hears why the boards
    /// not free are not, each time it looks.
    pub fn acquire_pool(
        &self,
        pool: &Pool,
        holder: &Holder,
        ttl: Duration,
        wait: Duration,
        mut waiting: impl FnMut(&[String]),
    ) -> Result<Vec<Lease>> {
        let (boards, count) = (pool.boards, pool.count);
        let started = Instant::now();
        let mut tickets: Vec<Ticket> = Vec::new();
        let outcome = loop {
            let mut got = Vec::new();
            for (i, board) in boards.iter().enumerate() {
                if got.len() == count {
                    break;
                }
                let take = || self.take_lease(board, holder, ttl, tickets.get(i));
                if let Some(lease) = take()? {
                    got.push(lease);
                } else if self.reap_dead_holder(board)?
                    && let Some(lease) = take()?
                {
                    got.push(lease);
                }
            }
            if got.len() == count {
                break Ok(got);
            }
            for lease in &got {
                self.release_lease(lease)?;
            }
            let taken = self.why_taken(boards, &tickets)?;
            if started.elapsed() >= wait {
                break Err(LeaseError::PoolBusy {
                    pool: pool.name.into(),
                    count,
                    boards: boards.to_vec(),
                    taken,
                    waited: started.elapsed(),
                }
                .into());
            }
            waiting(&taken);
            if tickets.is_empty() {
                let wants = format!("{count} board(s) of pool {{ {} }}", pool.name);
                for board in boards {
                    tickets.push(self.enqueue_for(board, holder, Some(&wants))?);
                }
            }
            std::thread::sleep(poll_interval(ttl).min(wait.saturating_sub(started.elapsed())));
            for ticket in &tickets {
                self.keep_waiting(ticket)?;
            }
        };
        for ticket in &tickets {
            self.leave_queue(ticket)?;
        }
        outcome
    }

    /// Why each of `boards` that cannot be leased now cannot: out of rotation, held, or promised
    /// to an earlier waiter.
    fn why_taken(&self, boards: &[String], mine: &[Ticket]) -> Result<Vec<String>> {
        let now = self.now_ms()?;
        let mut taken = Vec::new();
        for (i, board) in boards.iter().enumerate() {
            let before = mine.get(i).map_or(i64::MAX, |t| t.ticket);
            if let Some(out) = self.rotation(board)? {
                taken.push(format!(
                    "`{board}` out of rotation: {} (by {})",
                    out.reason, out.by
                ));
            } else if let Some(l) = self.lease(board)?.filter(|l| l.expires_ms > now) {
                taken.push(format!(
                    "`{board}` held by {} since {} ms (Unix time)",
                    l.holder, l.acquired_ms
                ));
            } else if self
                .queue(board, Duration::ZERO)?
                .iter()
                .any(|t| t.ticket < before)
            {
                taken.push(format!("`{board}` promised to an earlier waiter"));
            }
        }
        Ok(taken)
    }

    /// Expires the lease on `board` at once when its holder is a process of this host that is gone
    /// (the TTL is for holders elsewhere, whose death this host cannot see); `true` if it did.
    fn reap_dead_holder(&self, board: &str) -> Result<bool> {
        let Some(current) = self.lease(board)? else {
            return Ok(false);
        };
        if current.holder.host != host_name() || crate::process::alive(current.holder.pid, None) {
            return Ok(false);
        }
        let what = || format!("expire the lease of a gone process on board `{board}`");
        let n = self
            .db()
            .execute(
                "UPDATE leases SET expires_ms = 0 WHERE board = ?1 AND token = ?2",
                vals![board, &current.token],
            )
            .map_err(sql(what))?;
        Ok(n == 1)
    }

    /// Ends whoever's lease `board` has, recording who did it and why; returns the lease ended.
    pub fn force_release(&self, board: &str, by: &str, reason: &str) -> Result<Option<Lease>> {
        for (field, value) in [("by", by), ("reason", reason)] {
            if value.trim().is_empty() {
                return Err(LeaseError::EmptyField {
                    board: board.into(),
                    field,
                }
                .into());
            }
        }
        let what = || format!("release board `{board}` by force");
        let now = self.dialect().now_ms();
        self.transaction(self.retry, &what, |db| {
            let rows = db
                .query(
                    &format!(
                        "DELETE FROM leases WHERE board = ?1 AND expires_ms > {now} \
                         RETURNING {LEASE_COLUMNS}"
                    ),
                    vals![board],
                )
                .map_err(sql(what))?;
            let ended = rows.first().map(lease).transpose().map_err(sql(what))?;
            db.execute(
                &format!(
                    "INSERT INTO lease_events (board, event, holder, by_whom, reason, at_ms) \
                     VALUES (?1, 'forced-release', ?2, ?3, ?4, {now})"
                ),
                vals![
                    board,
                    ended.as_ref().map(|l| l.holder.to_string()),
                    by,
                    reason
                ],
            )
            .map_err(sql(what))?;
            Ok(ended)
        })
    }

    /// Leases `board` to nobody until [`Store::put_back`] (LAVA's rule for a failed health check).
    pub fn take_out_of_rotation(&self, board: &str, by: &str, reason: &str) -> Result<()> {
        self.rotate(board, by, reason, false)
    }

    /// Puts a board taken out of rotation back.
    pub fn put_back(&self, board: &str, by: &str, reason: &str) -> Result<()> {
        self.rotate(board, by, reason, true)
    }

    fn rotate(&self, board: &str, by: &str, reason: &str, back: bool) -> Result<()> {
        let what = || format!("change the rotation of board `{board}`");
        let now = self.dialect().now_ms();
        self.transaction(self.retry, &what, |db| {
            if back {
                db.execute("DELETE FROM boards_out WHERE board = ?1", vals![board])
            } else {
                db.execute(
                    &format!(
                        "INSERT INTO boards_out (board, reason, by_whom, since_ms) \
                         VALUES (?1, ?2, ?3, {now}) ON CONFLICT (board) DO UPDATE \
                         SET reason = excluded.reason, by_whom = excluded.by_whom"
                    ),
                    vals![board, reason, by],
                )
            }
            .map_err(sql(what))?;
            db.execute(
                &format!(
                    "INSERT INTO lease_events (board, event, by_whom, reason, at_ms) \
                     VALUES (?1, ?2, ?3, ?4, {now})"
                ),
                vals![
                    board,
                    if back {
                        "back-in-rotation"
                    } else {
                        "out-of-rotation"
                    },
                    by,
                    reason
                ],
            )
            .map_err(sql(what))
        })?;
        Ok(())
    }

    /// Why `board` is out of rotation, if it is.
    pub fn rotation(&self, board: &str) -> Result<Option<OutOfRotation>> {
        Ok(self
            .out_of_rotation()?
            .into_iter()
            .find(|o| o.board == board))
    }

    pub fn out_of_rotation(&self) -> Result<Vec<OutOfRotation>> {
        let what = || "list the boards out of rotation".to_string();
        let rows = self.query(
            what,
            "SELECT board, reason, by_whom, since_ms FROM boards_out ORDER BY board",
            &[],
        )?;
        all(rows, |r| {
            Ok(OutOfRotation {
                board: r.text(0)?,
                reason: r.text(1)?,
                by: r.text(2)?,
                since_ms: r.int(3)?,
            })
        })
        .map_err(sql(what))
    }

    /// Recorded forced releases and rotation changes, oldest first.
    pub fn lease_events(&self) -> Result<Vec<LeaseEvent>> {
        let what = || "list lease events".to_string();
        let rows = self.query(
            what,
            "SELECT board, event, holder, by_whom, reason, at_ms FROM lease_events ORDER BY id",
            &[],
        )?;
        all(rows, |r| {
            Ok(LeaseEvent {
                board: r.text(0)?,
                event: r.text(1)?,
                holder: r.opt_text(2)?,
                by: r.text(3)?,
                reason: r.text(4)?,
                at_ms: r.int(5)?,
            })
        })
        .map_err(sql(what))
    }

    /// A bare round trip to the database (`SELECT 1`): the scale a lease's round trip is
    /// measured against (`benches/store.rs`).
    pub fn ping(&self) -> Result<()> {
        self.query(|| "reach the database".to_string(), "SELECT 1", &[])
            .map(drop)
    }

    /// Milliseconds since the Unix epoch by the database's clock.
    pub fn now_ms(&self) -> Result<i64> {
        let what = || "read the database's clock".to_string();
        let now = self.dialect().now_ms();
        self.query(what, &format!("SELECT {now}"), &[])?[0]
            .int(0)
            .map_err(sql(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ci_job_comes_from_the_first_ci_variable_set() {
        let from = |pairs: &'static [(&'static str, &'static str)]| {
            ci_job(move |k| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(from(&[]), None);
        assert_eq!(
            from(&[("GITHUB_RUN_ID", "77"), ("GITHUB_JOB", "hil")]).as_deref(),
            Some("github 77/hil")
        );
        assert_eq!(from(&[("CI_JOB_ID", "5")]).as_deref(), Some("gitlab 5"));
        assert_eq!(
            from(&[("CI_JOB_ID", "5"), ("GAUNTLET_CI_JOB", "mine")]).as_deref(),
            Some("mine")
        );
        assert_eq!(from(&[("CI_JOB_ID", "")]), None);
    }
}
