//! Static files (`static/`), embedded in the binary and served under content-hashed names
//! (`app.css` → `/static/app.1a2b3c4d5e6f7a8b.css`) so browsers may cache them for a year.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use crate::error::AppError;
use crate::state::AppState;

#[derive(Embed)]
#[folder = "static/"]
struct StaticFiles;

/// The hashed public URL of every embedded file, computed once at start.
pub struct Assets {
    urls: HashMap<String, String>,
    files: HashMap<String, String>,
}

impl Assets {
    pub fn load() -> Self {
        let mut urls = HashMap::new();
        let mut files = HashMap::new();
        for path in StaticFiles::iter() {
            let Some(file) = StaticFiles::get(&path) else { continue };
            let hash = hex::encode(&file.metadata.sha256_hash()[..8]);
            let hashed = hashed_name(&path, &hash);
            urls.insert(path.to_string(), format!("/static/{hashed}"));
            files.insert(hashed, path.to_string());
        }
        Self { urls, files }
    }

    /// The public URL of a file under `static/`. Panics on a name that is not embedded: a
    /// template naming a missing asset is a build mistake that every page test catches.
    pub fn url(&self, path: &str) -> &str {
        self.urls.get(path).map(String::as_str).unwrap_or_else(|| panic!("no static file {path:?}"))
    }
}

/// `dir/name.min.js` + hash → `dir/name.min.<hash>.js`; no extension → `name.<hash>`.
fn hashed_name(path: &str, hash: &str) -> String {
    let (dir, file) = path.rsplit_once('/').map_or(("", path), |(d, f)| (d, f));
    let hashed = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{hash}.{ext}"),
        _ => format!("{file}.{hash}"),
    };
    if dir.is_empty() { hashed } else { format!("{dir}/{hashed}") }
}

/// `GET /static/{*path}`: only hashed names resolve, and they never change.
pub async fn serve_static(State(state): State<AppState>, Path(path): Path<String>) -> Result<Response, AppError> {
    let logical = state.assets.files.get(&path).ok_or(AppError::NotFound)?;
    let file = StaticFiles::get(logical).ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, file.metadata.mimetype().to_owned()),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_owned()),
        ],
        file.data.into_owned(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_goes_before_the_last_extension() {
        assert_eq!(hashed_name("app.css", "ab"), "app.ab.css");
        assert_eq!(hashed_name("vendor/htmx/htmx.min.js", "ab"), "vendor/htmx/htmx.min.ab.js");
        assert_eq!(hashed_name("vendor/htmx/LICENSE", "ab"), "vendor/htmx/LICENSE.ab");
    }

    #[test]
    fn every_embedded_file_has_a_url_that_serves_it_back() {
        let assets = Assets::load();
        let css = assets.url("app.css");
        let hashed = css.strip_prefix("/static/").unwrap();
        assert_eq!(assets.files.get(hashed).map(String::as_str), Some("app.css"));
    }
}
