//! Campaign experiments in the store: the arms a call played (`call_arms`, written in the
//! call's transaction) and the bandit's per-arm counts (`bandit_arms`), shared by every line of
//! a campaign and kept across restarts.

use super::SqlStore;
use crate::RetrievalError;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

/// The `choice` of a call's A/B arm row.
pub const AB_CHOICE: &str = "ab";

/// One arm a stored call played.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallArm {
    pub call_id: String,
    pub customer_id: String,
    pub campaign_id: String,
    pub experiment: String,
    /// [`AB_CHOICE`] for the A/B split, else a choice point (`opening`, …).
    pub choice: String,
    pub arm: String,
    pub segment: String,
    pub converted: bool,
    /// A bandit chose this arm (and learns from this call).
    pub by_bandit: bool,
}

/// A bandit arm's counts: its posterior is Beta(1 + conversions, 1 + plays − conversions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanditArm {
    pub campaign_id: String,
    pub segment: String,
    pub choice: String,
    pub arm: String,
    pub plays: i64,
    pub conversions: i64,
}

/// Stores a call's arms and, for those a bandit chose, adds the call to the bandit's counts —
/// inside the call's transaction, so a call is learned from exactly once.
pub async fn record_call_arms_in(
    conn: &mut AnyConnection,
    arms: &[CallArm],
    now_ms: i64,
) -> Result<(), RetrievalError> {
    for a in arms {
        sqlx::query(
            "INSERT INTO call_arms (call_id, customer_id, campaign_id, experiment, choice, arm, \
             segment, converted, by_bandit) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&a.call_id)
        .bind(&a.customer_id)
        .bind(&a.campaign_id)
        .bind(&a.experiment)
        .bind(&a.choice)
        .bind(&a.arm)
        .bind(&a.segment)
        .bind(i64::from(a.converted))
        .bind(i64::from(a.by_bandit))
        .execute(&mut *conn)
        .await?;
        if a.by_bandit {
            sqlx::query(
                "INSERT INTO bandit_arms (campaign_id, segment, choice, arm, plays, conversions, \
                 updated_at_ms) VALUES ($1, $2, $3, $4, 1, $5, $6) \
                 ON CONFLICT (campaign_id, segment, choice, arm) DO UPDATE SET \
                 plays = bandit_arms.plays + 1, \
                 conversions = bandit_arms.conversions + excluded.conversions, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&a.campaign_id)
            .bind(&a.segment)
            .bind(&a.choice)
            .bind(&a.arm)
            .bind(i64::from(a.converted))
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

impl SqlStore {
    /// The bandit's counts of a campaign (every segment, choice point and arm played so far).
    pub async fn bandit_arms(&self, campaign_id: &str) -> Result<Vec<BanditArm>, RetrievalError> {
        let rows = sqlx::query(
            "SELECT campaign_id, segment, choice, arm, plays, conversions FROM bandit_arms \
             WHERE campaign_id = $1 ORDER BY segment, choice, arm",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| -> Result<BanditArm, sqlx::Error> {
                Ok(BanditArm {
                    campaign_id: r.try_get(0)?,
                    segment: r.try_get(1)?,
                    choice: r.try_get(2)?,
                    arm: r.try_get(3)?,
                    plays: r.try_get(4)?,
                    conversions: r.try_get(5)?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// Every stored call's arms, by campaign, experiment, choice and arm.
    pub async fn call_arms(&self) -> Result<Vec<CallArm>, RetrievalError> {
        let rows = sqlx::query(&format!(
            "{ARM_COLUMNS} ORDER BY campaign_id, experiment, choice, arm, call_id"
        ))
        .fetch_all(self.pool())
        .await?;
        arms_of_rows(&rows)
    }

    /// The arms of one call.
    pub async fn arms_of_call(&self, call_id: &str) -> Result<Vec<CallArm>, RetrievalError> {
        let rows = sqlx::query(&format!("{ARM_COLUMNS} WHERE call_id = $1 ORDER BY choice"))
            .bind(call_id)
            .fetch_all(self.pool())
            .await?;
        arms_of_rows(&rows)
    }
}

const ARM_COLUMNS: &str = "SELECT call_id, customer_id, campaign_id, experiment, choice, arm, \
     segment, converted, by_bandit FROM call_arms";

fn arms_of_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<CallArm>, RetrievalError> {
    rows.iter()
        .map(|r| -> Result<CallArm, sqlx::Error> {
            Ok(CallArm {
                call_id: r.try_get(0)?,
                customer_id: r.try_get(1)?,
                campaign_id: r.try_get(2)?,
                experiment: r.try_get(3)?,
                choice: r.try_get(4)?,
                arm: r.try_get(5)?,
                segment: r.try_get(6)?,
                converted: r.try_get::<i64, _>(7)? != 0,
                by_bandit: r.try_get::<i64, _>(8)? != 0,
            })
        })
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}
