//! Customer profiles in SQL: the customer row with its hashed and sealed phone, the static,
//! dynamic and implicit attributes, interests and consent, written in batches and read back as
//! one [`CustomerProfile`].

use super::{batch_rows, placeholders, SqlStore};
use crate::privacy::SealedPhone;
use crate::{CustomerProfile, Language, RetrievalError};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cached profile may be served without a write of this process touching it: the
/// bound on staleness when another process (a second orchestrator on the same PostgreSQL)
/// changes a profile or a consent.
const PROFILE_TTL: Duration = Duration::from_secs(10);
/// Cached profiles at most; the cache is emptied when full (a campaign's working set is small).
const PROFILE_CACHE_MAX: usize = 50_000;

/// Profiles read recently, so the per-turn context does not re-run the profile query. Every
/// write of this store that can change a profile (customers, profiles, consent, calls, call
/// logs, erasure) empties it and bumps the generation; a read that raced such a write is not
/// cached (its generation is stale).
#[derive(Debug, Default)]
pub(crate) struct ProfileCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, (Instant, CustomerProfile)>>,
}

impl ProfileCache {
    fn get(&self, customer_id: &str) -> Option<CustomerProfile> {
        let entries = self.entries.lock().ok()?;
        let (at, p) = entries.get(customer_id)?;
        (at.elapsed() < PROFILE_TTL).then(|| p.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn put(&self, generation: u64, profile: &CustomerProfile) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if self.generation() != generation {
            return;
        }
        if entries.len() >= PROFILE_CACHE_MAX {
            entries.clear();
        }
        entries.insert(
            profile.customer_id.clone(),
            (Instant::now(), profile.clone()),
        );
    }

    fn invalidate(&self) {
        // The generation first: a read in flight can no longer store what it read.
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// A profile as written by an import: the attributes plus the phone in its stored forms.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRecord {
    pub profile: CustomerProfile,
    pub phone: Option<SealedPhone>,
    /// Kept from the first import when the customer already exists.
    pub created_at_ms: i64,
}

impl SqlStore {
    /// Inserts or updates profiles (customer, attributes, interests, consent) in one
    /// transaction. `source` names where a do-not-call flag came from (e.g. `crm-import`).
    pub async fn upsert_profiles(
        &self,
        records: &[ProfileRecord],
        source: &str,
        now_ms: i64,
    ) -> Result<(), RetrievalError> {
        let mut tx = self.pool.begin().await?;
        write_profiles(&mut tx, records, source, now_ms).await?;
        tx.commit().await?;
        self.profiles_changed();
        Ok(())
    }

    /// Forgets every cached profile: called after each write that can change one.
    pub(crate) fn profiles_changed(&self) {
        self.profiles.invalidate();
    }

    /// The customer's profile with call counts and last contact taken from both this system's
    /// calls and the CRM's call logs, or `None` if the customer is unknown. Served from a cache
    /// that this store's writes invalidate (and that expires after ten seconds, for writes made
    /// by other processes).
    pub async fn profile(
        &self,
        customer_id: &str,
    ) -> Result<Option<CustomerProfile>, RetrievalError> {
        if let Some(p) = self.profiles.get(customer_id) {
            return Ok(Some(p));
        }
        let generation = self.profiles.generation();
        let profile = self.read_profile(customer_id).await?;
        if let Some(p) = &profile {
            self.profiles.put(generation, p);
        }
        Ok(profile)
    }

    async fn read_profile(
        &self,
        customer_id: &str,
    ) -> Result<Option<CustomerProfile>, RetrievalError> {
        let Some(r) = sqlx::query(
            "SELECT c.id, c.display_name, c.language, p.age, p.region, p.occupation, p.income_band, \
             p.children_in_school, p.recent_purchases, p.last_contact_ms, p.price_sensitivity, \
             p.segment, k.do_not_call, \
             (SELECT COUNT(*) FROM calls WHERE customer_id = c.id), \
             (SELECT COUNT(*) FROM call_logs WHERE customer_id = c.id), \
             (SELECT MAX(started_at_ms) FROM calls WHERE customer_id = c.id), \
             (SELECT MAX(started_at_ms) FROM call_logs WHERE customer_id = c.id) \
             FROM customers c LEFT JOIN profiles p ON p.customer_id = c.id \
             LEFT JOIN consents k ON k.customer_id = c.id WHERE c.id = $1",
        )
        .bind(customer_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let interests = sqlx::query_scalar::<_, String>(
            "SELECT interest FROM interests WHERE customer_id = $1 ORDER BY interest",
        )
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await?;
        let small =
            |i: usize| -> Result<Option<i64>, sqlx::Error> { r.try_get::<Option<i64>, _>(i) };
        let language: String = r.try_get(2)?;
        let last_contact = [small(9)?, small(15)?, small(16)?]
            .into_iter()
            .flatten()
            .max();
        Ok(Some(CustomerProfile {
            customer_id: r.try_get(0)?,
            display_name: r.try_get(1)?,
            language: Language::parse(&language).unwrap_or_default(),
            age: small(3)?.and_then(|v| u32::try_from(v).ok()),
            region: r.try_get(4)?,
            occupation: r.try_get(5)?,
            income_band: small(6)?.and_then(|v| u8::try_from(v).ok()),
            children_in_school: small(7)?.and_then(|v| u8::try_from(v).ok()),
            recent_purchases: small(8)?.and_then(|v| u32::try_from(v).ok()),
            last_contact_ms: last_contact,
            calls_so_far: u32::try_from(small(13)?.unwrap_or(0) + small(14)?.unwrap_or(0))
                .unwrap_or(u32::MAX),
            interests,
            price_sensitivity: r.try_get::<Option<f64>, _>(10)?.map(|v| v as f32),
            segment: r.try_get(11)?,
            do_not_call: small(12)?.unwrap_or(0) != 0,
        }))
    }

    /// Sets or clears a customer's do-not-call flag (e.g. the callee asked not to be called).
    pub async fn set_do_not_call(
        &self,
        customer_id: &str,
        do_not_call: bool,
        source: &str,
        now_ms: i64,
    ) -> Result<(), RetrievalError> {
        sqlx::query(
            "INSERT INTO consents (customer_id, do_not_call, source, updated_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (customer_id) DO UPDATE SET do_not_call = excluded.do_not_call, \
             source = excluded.source, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(customer_id)
        .bind(i64::from(do_not_call))
        .bind(source)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        self.profiles_changed();
        Ok(())
    }

    /// Customer id per phone hash, for every customer with a phone (joins imports to what is
    /// already stored).
    pub async fn phone_hashes(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, RetrievalError> {
        let rows = sqlx::query("SELECT phone_hash, id FROM customers WHERE phone_hash IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| -> Result<(String, String), RetrievalError> {
                Ok((r.try_get(0)?, r.try_get(1)?))
            })
            .collect()
    }
}

pub(crate) async fn write_profiles(
    conn: &mut AnyConnection,
    records: &[ProfileRecord],
    source: &str,
    now_ms: i64,
) -> Result<(), RetrievalError> {
    for chunk in records.chunks(batch_rows(11)) {
        let sql = format!(
            "INSERT INTO customers (id, display_name, language, created_at_ms, phone_hash, phone_sealed) \
             VALUES {} ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, \
             language = excluded.language, \
             phone_hash = COALESCE(excluded.phone_hash, customers.phone_hash), \
             phone_sealed = COALESCE(excluded.phone_sealed, customers.phone_sealed)",
            placeholders(conn, chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            let p = &r.profile;
            q = q
                .bind(p.customer_id.as_str())
                .bind(p.display_name.as_str())
                .bind(p.language.code())
                .bind(r.created_at_ms)
                .bind(r.phone.as_ref().map(|s| s.hash.as_str()))
                .bind(r.phone.as_ref().map(|s| s.sealed.as_str()));
        }
        q.execute(&mut *conn).await?;

        let sql = format!(
            "INSERT INTO profiles (customer_id, age, region, occupation, income_band, \
             children_in_school, recent_purchases, last_contact_ms, price_sensitivity, segment, \
             updated_at_ms) VALUES {} ON CONFLICT (customer_id) DO UPDATE SET age = excluded.age, \
             region = excluded.region, occupation = excluded.occupation, \
             income_band = excluded.income_band, children_in_school = excluded.children_in_school, \
             recent_purchases = excluded.recent_purchases, last_contact_ms = excluded.last_contact_ms, \
             price_sensitivity = excluded.price_sensitivity, segment = excluded.segment, \
             updated_at_ms = excluded.updated_at_ms",
            placeholders(conn, chunk.len(), 11)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            let p = &r.profile;
            q = q
                .bind(p.customer_id.as_str())
                .bind(p.age.map(i64::from))
                .bind(p.region.as_deref())
                .bind(p.occupation.as_deref())
                .bind(p.income_band.map(i64::from))
                .bind(p.children_in_school.map(i64::from))
                .bind(p.recent_purchases.map(i64::from))
                .bind(p.last_contact_ms)
                .bind(p.price_sensitivity.map(f64::from))
                .bind(p.segment.as_deref())
                .bind(now_ms);
        }
        q.execute(&mut *conn).await?;

        let sql = format!(
            "INSERT INTO consents (customer_id, do_not_call, source, updated_at_ms) VALUES {} \
             ON CONFLICT (customer_id) DO UPDATE SET do_not_call = excluded.do_not_call, \
             source = excluded.source, updated_at_ms = excluded.updated_at_ms",
            placeholders(conn, chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.profile.customer_id.as_str())
                .bind(i64::from(r.profile.do_not_call))
                .bind(source)
                .bind(now_ms);
        }
        q.execute(&mut *conn).await?;

        // Interests are replaced as a set.
        let sql = format!(
            "DELETE FROM interests WHERE customer_id IN {}",
            placeholders(conn, 1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q.bind(r.profile.customer_id.as_str());
        }
        q.execute(&mut *conn).await?;
        let pairs: Vec<(&str, &str)> = chunk
            .iter()
            .flat_map(|r| {
                r.profile
                    .interests
                    .iter()
                    .map(|i| (r.profile.customer_id.as_str(), i.as_str()))
            })
            .collect();
        for part in pairs.chunks(batch_rows(2)) {
            let sql = format!(
                "INSERT INTO interests (customer_id, interest) VALUES {} ON CONFLICT DO NOTHING",
                placeholders(conn, part.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (c, i) in part {
                q = q.bind(*c).bind(*i);
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}
