//! Keyset pagination, one way for every list: ask the database for one row more than a page;
//! [`next_page`] cuts that row off and hands back the last row shown, from which the list makes
//! the cursor of the next page. Cursors are URL-encoded text in the page's links.

use chrono::{DateTime, Utc};

use super::forms::encode;

/// Keep the first `size` rows; `Some(last row kept)` when the probe row says another page
/// follows.
pub fn next_page<T>(rows: &mut Vec<T>, size: i64) -> Option<&T> {
    let size = usize::try_from(size).unwrap_or(0);
    if rows.len() > size {
        rows.truncate(size);
        rows.last()
    } else {
        None
    }
}

/// A keyset cursor on (time, id), URL-encoded, for "older" / "next page" links.
pub fn time_cursor(at: DateTime<Utc>, id: &str) -> String {
    encode(&format!("{}|{id}", at.to_rfc3339()))
}

/// The (time, id) of a cursor made by [`time_cursor`]; `None` for anything else.
pub fn parse_time_cursor(text: &str) -> Option<(DateTime<Utc>, String)> {
    let (at, id) = text.split_once('|')?;
    Some((DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc), id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_row_is_cut_off_and_cursors_round_trip() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(next_page(&mut rows, 2), Some(&2));
        assert_eq!(rows, [1, 2]);
        assert_eq!(next_page(&mut rows, 2), None, "a full last page has no next");
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let cursor = time_cursor(at, "tx_abc");
        let decoded: String =
            openidconnect::url::form_urlencoded::parse(format!("c={cursor}").as_bytes()).next().unwrap().1.into_owned();
        assert_eq!(parse_time_cursor(&decoded), Some((at, "tx_abc".to_owned())));
        assert_eq!(parse_time_cursor("garbage"), None);
    }
}
