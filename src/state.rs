//! Shared application state handed to every handler.

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::ops::metrics::Metrics;
use crate::web::assets::Assets;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub assets: Arc<Assets>,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config) -> Self {
        Self { pool, config: Arc::new(config), metrics: Arc::new(Metrics::new()), assets: Arc::new(Assets::load()) }
    }
}
