//! Checking what people type: trimmed, required, bounded. Messages are shown next to the field.

/// A form's fields as sent, for forms with repeated fields (checkboxes named alike, roles,
/// transactions) or fields named at run time (a checklist's items): the one extractor for them.
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Self(openidconnect::url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, as typed; "" when absent.
    pub fn one(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`, in the order sent.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Fields {
    type Rejection = axum::extract::rejection::BytesRejection;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = axum::body::Bytes::from_request(request, state).await?;
        Ok(Self::parse(&body))
    }
}

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
