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

/// A value for a URL's query string.
pub fn encode(value: &str) -> String {
    openidconnect::url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
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
    fn queries_keep_only_what_was_typed() {
        assert_eq!(query_string(&[("a", " x y "), ("b", "  "), ("c", "&")]), "a=x+y&c=%26");
    }

    #[test]
    fn text_is_trimmed_required_and_bounded() {
        assert_eq!(required_text("  ok ", 10, "a reason"), Ok("ok".to_owned()));
        assert_eq!(required_text(" \n ", 10, "a reason"), Err("Enter a reason.".to_owned()));
        assert_eq!(required_text("ééééé", 4, "notes"), Err("Keep notes under 4 characters (now 5).".to_owned()));
    }
}
