//! Reading the services' answers in tests.

use serde_json::Value;

/// Status and JSON body. Every answer of the shop's APIs is JSON, so a body that is not, or is
/// not labelled as such, fails the test.
pub async fn decode(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default();
    let text = response.text().await.unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "status {status}: not JSON ({content_type}): {text}"
    );
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: not JSON ({content_type}): {text}"));
    (status, body)
}

/// Asserts an error status with a JSON `error` message that mentions `mentions`.
pub fn assert_error(status: u16, body: &Value, expected_status: u16, mentions: &str) {
    assert_eq!(status, expected_status, "{body}");
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {body}"));
    assert!(
        message.to_lowercase().contains(&mentions.to_lowercase()),
        "`{message}` should mention `{mentions}`"
    );
}

/// A sample's value on a Prometheus text page, found by name and some of its labels.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let matches = labels.iter().all(|(k, v)| {
            label_text
                .split(',')
                .any(|pair| pair == format!("{k}=\"{v}\""))
        });
        matches.then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn samples_are_found_by_name_and_labels() {
        let page = "# TYPE x counter\nx{a=\"1\",b=\"2\"} 3\nx{a=\"2\",b=\"2\"} 4\ny 7\nyz 8\n";
        assert_eq!(sample(page, "x", &[("a", "2")]), Some(4.0));
        assert_eq!(sample(page, "x", &[("b", "2")]), Some(3.0));
        assert_eq!(sample(page, "y", &[]), Some(7.0));
        assert_eq!(sample(page, "x", &[("a", "3")]), None);
    }
}
