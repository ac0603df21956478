//! Drift verdicts (`gauntlet drift`): each requalification of a champion on fresh recordings,
//! linked to the promotion it judged, with the SHA-256 of every recording it replayed and its
//! whole drift.json.

use crate::backend::vals;
use crate::{Result, Store, all, sql};

/// A drift verdict to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDriftCheck<'a> {
    pub id: &'a str,
    pub scenario: &'a str,
    pub model: &'a str,
    pub board_class: &'a str,
    pub board: &'a str,
    /// The promotion ledger row of the champion that was requalified.
    pub promotion_id: i64,
    /// `requalified`, `drifted` or `inconclusive`.
    pub verdict: &'a str,
    pub checked_at: &'a str,
    /// Each replayed recording's path and SHA-256, in replay order.
    pub recordings: &'a [(String, String)],
    pub drift_json: &'a str,
}

/// A recorded drift verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftCheck {
    pub id: String,
    pub scenario: String,
    pub model: String,
    pub board_class: String,
    pub board: String,
    pub promotion_id: i64,
    pub verdict: String,
    pub checked_at: String,
    pub recordings: Vec<(String, String)>,
}

impl Store {
    /// Records a drift verdict and its recordings in one transaction.
    pub fn record_drift(&self, c: &NewDriftCheck) -> Result<()> {
        let what = || format!("record drift check `{}` of `{}`", c.id, c.scenario);
        self.transaction(self.retry, &what, |db| {
            db.execute(
                "INSERT INTO drift_checks (id, scenario, model, board_class, board, promotion_id, \
                 verdict, checked_at, drift_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                vals![
                    c.id,
                    c.scenario,
                    c.model,
                    c.board_class,
                    c.board,
                    c.promotion_id,
                    c.verdict,
                    c.checked_at,
                    c.drift_json
                ],
            )
            .map_err(sql(what))?;
            for (position, (path, sha256)) in c.recordings.iter().enumerate() {
                db.execute(
                    "INSERT INTO drift_recordings (check_id, position, path, sha256) \
                     VALUES (?1, ?2, ?3, ?4)",
                    vals![c.id, position as i64, path, sha256],
                )
                .map_err(sql(what))?;
            }
            Ok(())
        })
    }

    /// Every drift verdict of a scenario, oldest first.
    pub fn drift_checks(&self, scenario: &str) -> Result<Vec<DriftCheck>> {
        let what = || format!("list the drift checks of `{scenario}`");
        let rows = self.query(
            what,
            "SELECT id, scenario, model, board_class, board, promotion_id, verdict, checked_at \
             FROM drift_checks WHERE scenario = ?1 ORDER BY checked_at, id",
            vals![scenario],
        )?;
        let mut checks = all(rows, |r| {
            Ok(DriftCheck {
                id: r.text(0)?,
                scenario: r.text(1)?,
                model: r.text(2)?,
                board_class: r.text(3)?,
                board: r.text(4)?,
                promotion_id: r.int(5)?,
                verdict: r.text(6)?,
                checked_at: r.text(7)?,
                recordings: Vec::new(),
            })
        })
        .map_err(sql(what))?;
        for check in &mut checks {
            let rows = self.query(
                what,
                "SELECT path, sha256 FROM drift_recordings WHERE check_id = ?1 ORDER BY position",
                vals![&check.id],
            )?;
            check.recordings = all(rows, |r| Ok((r.text(0)?, r.text(1)?))).map_err(sql(what))?;
        }
        Ok(checks)
    }
}
