//! Checking what people type: trimmed, required, bounded. Messages are shown next to the field.

/// A form whose one field is a reason (disable a person, revoke sessions, erase data).
#[derive(Debug, Default, serde::Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    pub reason: String,
}

/// A trimmed optional field: `None` when nothing was typed.
pub fn non_empty(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// The query string of a form's fields, leaving out the blank ones: for links that keep a
/// search (pagination, export, a polling refresh).
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = openidconnect::url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if let Some(value) = non_empty(value) {
            out.append_pair(key, &value);
        }
    }
    out.finish()
}

/// A keyset cursor on (time, id), URL-encoded, for "older" / "next page" links.
pub fn time_cursor(at: chrono::DateTime<chrono::Utc>, id: &str) -> String {
    crate::auth::guard::encode(&format!("{}|{id}", at.to_rfc3339()))
}

/// The (time, id) of a cursor made by [`time_cursor`]; `None` for anything else.
pub fn parse_time_cursor(text: &str) -> Option<(chrono::DateTime<chrono::Utc>, String)> {
    let (at, id) = text.split_once('|')?;
    Some((chrono::DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&chrono::Utc), id.to_owned()))
}

/// A required free-text field of a document (an STR's narrative, a reference): trimmed,
/// 1..=`max` characters. Reasons for an action are [`crate::audit::Reason`]s instead.
pub fn required_text(value: &str, max: usize, what: &str) -> Result<String, String> {
    let text = value.trim();
    match text.chars().count() {
        0 => Err(format!("Enter {what}.")),
        n if n > max => Err(format!("Keep {what} under {max} characters (now {n}).")),
        _ => Ok(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_only_what_was_typed_and_cursors_round_trip() {
        assert_eq!(query_string(&[("a", " x y "), ("b", "  "), ("c", "&")]), "a=x+y&c=%26");
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let cursor = time_cursor(at, "tx_abc");
        let decoded: String =
            openidconnect::url::form_urlencoded::parse(format!("c={cursor}").as_bytes()).next().unwrap().1.into_owned();
        assert_eq!(parse_time_cursor(&decoded), Some((at, "tx_abc".to_owned())));
        assert_eq!(parse_time_cursor("garbage"), None);
    }

    #[test]
    fn text_is_trimmed_required_and_bounded() {
        assert_eq!(required_text("  ok ", 10, "a reason"), Ok("ok".to_owned()));
        assert_eq!(required_text(" \n ", 10, "a reason"), Err("Enter a reason.".to_owned()));
        assert_eq!(required_text("ééééé", 4, "notes"), Err("Keep notes under 4 characters (now 5).".to_owned()));
    }
}
