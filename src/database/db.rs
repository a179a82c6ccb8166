//! Read-only statistics from PostgreSQL's own catalogue.

use sqlx::PgExecutor;

pub struct DatabaseOverview {
    pub name: String,
    pub version: String,
    pub size_bytes: i64,
}

impl DatabaseOverview {
    /// Size for people: "412.3 MB".
    pub fn size(&self) -> String {
        const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
        let mut size = self.size_bytes as f64;
        let mut unit = 0;
        while size >= 1024.0 && unit < UNITS.len() - 1 {
            size /= 1024.0;
            unit += 1;
        }
        if unit == 0 { format!("{} B", self.size_bytes) } else { format!("{size:.1} {}", UNITS[unit]) }
    }
}

pub struct ConnectionCount {
    pub state: String,
    pub count: i64,
}

pub async fn overview(db: impl PgExecutor<'_>) -> Result<DatabaseOverview, sqlx::Error> {
    sqlx::query_as!(
        DatabaseOverview,
        r#"select current_database() as "name!", current_setting('server_version') as "version!",
                  pg_database_size(current_database()) as "size_bytes!""#
    )
    .fetch_one(db)
    .await
}

/// Client connections to this database by state (active, idle, idle in transaction…).
pub async fn connections_by_state(db: impl PgExecutor<'_>) -> Result<Vec<ConnectionCount>, sqlx::Error> {
    sqlx::query_as!(
        ConnectionCount,
        r#"select coalesce(state, 'unknown') as "state!", count(*) as "count!"
           from pg_stat_activity
           where datname = current_database() and backend_type = 'client backend'
           group by 1 order by 2 desc, 1"#
    )
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_person_would_write_them() {
        let at = |size_bytes| DatabaseOverview { name: String::new(), version: String::new(), size_bytes }.size();
        assert_eq!(at(512), "512 B");
        assert_eq!(at(8 * 1024 * 1024 + 300 * 1024), "8.3 MB");
    }
}
