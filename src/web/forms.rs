//! Checking what people type: trimmed, required, bounded. Messages are shown next to the field.

/// A form whose one field is a reason (disable a person, revoke sessions, erase data).
#[derive(Debug, Default, serde::Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    pub reason: String,
}

/// A required free-text field (a reason, notes, a narrative): trimmed, 1..=`max` characters.
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
    use super::required_text;

    #[test]
    fn text_is_trimmed_required_and_bounded() {
        assert_eq!(required_text("  ok ", 10, "a reason"), Ok("ok".to_owned()));
        assert_eq!(required_text(" \n ", 10, "a reason"), Err("Enter a reason.".to_owned()));
        assert_eq!(required_text("ééééé", 4, "notes"), Err("Keep notes under 4 characters (now 5).".to_owned()));
    }
}
