//! Checks requests (path and query parameters, JSON bodies) against the service's own OpenAPI
//! schemas before the handlers parse them, so a bad request is answered 400 with every problem
//! named by field (`quantity must be at least 1, got 0`) — the framework's own parse errors do
//! not say which field was wrong. Valid requests pass through unchanged.

use std::{collections::HashMap, sync::Arc};

use poem::{
    http::{header, StatusCode},
    Body, Endpoint, IntoResponse, Middleware, Request, Response, Result,
};
use serde_json::{Map, Value};

use crate::{errors::json_error, metrics::RouteTemplates};

/// The request schemas of a service's operations, from its OpenAPI document.
#[derive(Clone)]
pub struct RequestValidation {
    routes: Arc<RouteTemplates>,
    bodies: Arc<HashMap<(String, String), Value>>,
    parameters: Arc<HashMap<(String, String), Vec<Parameter>>>,
    schemas: Arc<Map<String, Value>>,
}

#[derive(Debug, Clone)]
struct Parameter {
    name: String,
    /// The path segment it fills, for path parameters; `None` for query parameters.
    segment: Option<usize>,
    required: bool,
    schema: Value,
}

impl RequestValidation {
    pub fn from_spec(spec: &Value, routes: RouteTemplates) -> Self {
        let mut bodies = HashMap::new();
        let mut parameters = HashMap::new();
        if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
            for (path, operations) in paths {
                let label = routes.label(path).to_owned();
                let segments: Vec<&str> = path.split('/').skip(1).collect();
                for (method, operation) in operations.as_object().into_iter().flatten() {
                    let declared: Vec<Parameter> = operation
                        .get("parameters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|p| {
                            let name = p.get("name")?.as_str()?.to_owned();
                            let segment = match p.get("in")?.as_str()? {
                                "path" => Some(
                                    segments.iter().position(|s| *s == format!("{{{name}}}"))?,
                                ),
                                "query" => None,
                                _ => return None,
                            };
                            Some(Parameter {
                                required: p
                                    .get("required")
                                    .and_then(Value::as_bool)
                                    .unwrap_or(false),
                                schema: p.get("schema").cloned().unwrap_or(Value::Null),
                                name,
                                segment,
                            })
                        })
                        .collect();
                    if !declared.is_empty() {
                        parameters.insert((method.to_uppercase(), label.clone()), declared);
                    }
                    let schema = operation
                        .pointer("/requestBody/content")
                        .and_then(Value::as_object)
                        .and_then(|content| {
                            content
                                .iter()
                                .find(|(mime, _)| mime.starts_with("application/json"))
                                .and_then(|(_, media)| media.get("schema").cloned())
                        });
                    if let Some(schema) = schema {
                        bodies.insert((method.to_uppercase(), label.clone()), schema);
                    }
                }
            }
        }
        let schemas = spec
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Self {
            routes: Arc::new(routes),
            bodies: Arc::new(bodies),
            parameters: Arc::new(parameters),
            schemas: Arc::new(schemas),
        }
    }

    /// Problems with the path and query parameters of `method path?query`.
    pub fn check_parameters(&self, method: &str, path: &str, query: Option<&str>) -> Vec<String> {
        let Some(declared) = self
            .parameters
            .get(&(method.to_owned(), self.routes.label(path).to_owned()))
        else {
            return Vec::new();
        };
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let query: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut problems = Vec::new();
        for parameter in declared {
            let raw = match parameter.segment {
                Some(index) => segments.get(index).map(|s| {
                    form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map_or_else(|| (*s).to_owned(), |(_, v)| v.into_owned())
                }),
                None => query
                    .iter()
                    .find(|(k, _)| *k == parameter.name)
                    .map(|(_, v)| v.clone()),
            };
            match raw {
                None if parameter.required => {
                    problems.push(format!("`{}` is required", parameter.name))
                }
                None => {}
                Some(raw) => {
                    let value = self.typed_parameter(&raw, &parameter.schema);
                    self.validate(&value, &parameter.schema, &parameter.name, &mut problems);
                }
            }
        }
        problems
    }

    /// A parameter's text as the JSON value its schema expects, when it reads as one; as a
    /// string otherwise, which validation then reports.
    fn typed_parameter(&self, raw: &str, schema: &Value) -> Value {
        let kind = self.resolve(schema).get("type").and_then(Value::as_str);
        match kind {
            Some("integer") => raw
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(raw)),
            Some("number") => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::from(raw), Value::Number),
            Some("boolean") => raw
                .parse::<bool>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(raw)),
            _ => Value::from(raw),
        }
    }

    /// Problems with `body` for `method path`, or `None` when the operation takes no JSON body.
    pub fn check(&self, method: &str, path: &str, body: &Value) -> Option<Vec<String>> {
        let schema = self
            .bodies
            .get(&(method.to_owned(), self.routes.label(path).to_owned()))?;
        let mut problems = Vec::new();
        self.validate(body, schema, "", &mut problems);
        Some(problems)
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix("#/components/schemas/")
                .and_then(|name| self.schemas.get(name))
                .map_or(schema, |target| self.resolve(target)),
            None => schema,
        }
    }

    fn validate(&self, value: &Value, schema: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            for part in parts {
                self.validate(value, part, at, problems);
            }
            return;
        }
        let name = if at.is_empty() {
            "the body".to_owned()
        } else {
            format!("`{at}`")
        };
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                let options: Vec<String> = allowed
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect();
                problems.push(format!(
                    "{name} must be one of {}, got {value}",
                    options.join(", ")
                ));
            }
            return;
        }
        let Some(kind) = schema.get("type").and_then(Value::as_str) else {
            return;
        };
        match kind {
            "object" => self.validate_object(value, schema, at, &name, problems),
            "array" => match value.as_array() {
                Some(items) => {
                    if let Some(item_schema) = schema.get("items") {
                        for (i, item) in items.iter().enumerate() {
                            self.validate(item, item_schema, &format!("{at}[{i}]"), problems);
                        }
                    }
                }
                None => problems.push(format!("{name} must be an array, got {value}")),
            },
            "integer" => match value
                .as_i64()
                .map(|v| v as f64)
                .or_else(|| value.as_u64().map(|v| v as f64))
            {
                Some(number) => {
                    let format_range = match schema.get("format").and_then(Value::as_str) {
                        Some("int32") => Some((f64::from(i32::MIN), f64::from(i32::MAX))),
                        Some("uint32") => Some((0.0, f64::from(u32::MAX))),
                        Some("uint64" | "uint16" | "uint8") => Some((0.0, f64::MAX)),
                        _ => None,
                    };
                    if let Some((low, high)) = format_range {
                        if number < low || number > high {
                            problems.push(format!("{name} is out of range: {value}"));
                            return;
                        }
                    }
                    check_bounds(number, schema, &name, value, problems);
                }
                None => problems.push(format!("{name} must be an integer, got {value}")),
            },
            "number" => match value.as_f64() {
                Some(number) => check_bounds(number, schema, &name, value, problems),
                None => problems.push(format!("{name} must be a number, got {value}")),
            },
            "boolean" if !value.is_boolean() => {
                problems.push(format!("{name} must be true or false, got {value}"));
            }
            "string" => {
                let decimal = schema.get("format").and_then(Value::as_str) == Some("decimal");
                match value {
                    Value::String(text) => {
                        // PostgreSQL's text cannot hold NUL; refuse it here rather than
                        // failing in the database.
                        if text.contains('\0') {
                            problems.push(format!("{name} must not contain NUL characters"));
                            return;
                        }
                        if decimal && text.trim().parse::<f64>().is_err() {
                            problems.push(format!("{name} must be a decimal number, got {value}"));
                            return;
                        }
                        let length = text.chars().count() as f64;
                        if let Some(min) = schema.get("minLength").and_then(Value::as_f64) {
                            if length < min {
                                problems
                                    .push(format!("{name} must be at least {min} characters long"));
                            }
                        }
                        if let Some(max) = schema.get("maxLength").and_then(Value::as_f64) {
                            if length > max {
                                problems
                                    .push(format!("{name} must be at most {max} characters long"));
                            }
                        }
                    }
                    Value::Number(_) if decimal => {}
                    _ if decimal => {
                        problems.push(format!("{name} must be a decimal number, got {value}"))
                    }
                    _ => problems.push(format!("{name} must be a string, got {value}")),
                }
            }
            _ => {}
        }
    }

    fn validate_object(
        &self,
        value: &Value,
        schema: &Value,
        at: &str,
        name: &str,
        problems: &mut Vec<String>,
    ) {
        let Some(object) = value.as_object() else {
            problems.push(format!(
                "{name} must be a JSON object, got {}",
                describe(value)
            ));
            return;
        };
        let field = |key: &str| {
            if at.is_empty() {
                key.to_owned()
            } else {
                format!("{at}.{key}")
            }
        };
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(key) = required.as_str() {
                if object.get(key).is_none_or(Value::is_null) {
                    problems.push(format!("`{}` is required", field(key)));
                }
            }
        }
        for (key, property) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            match object.get(key) {
                Some(Value::Null) | None => {}
                Some(v) => self.validate(v, property, &field(key), problems),
            }
        }
    }
}

fn check_bounds(
    number: f64,
    schema: &Value,
    name: &str,
    value: &Value,
    problems: &mut Vec<String>,
) {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if number < min {
            problems.push(format!("{name} must be at least {min}, got {value}"));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if number > max {
            problems.push(format!("{name} must be at most {max}, got {value}"));
        }
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<E: Endpoint> Middleware<E> for RequestValidation {
    type Output = RequestValidationEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestValidationEndpoint {
            inner,
            validation: self.clone(),
        }
    }
}

pub struct RequestValidationEndpoint<E> {
    inner: E,
    validation: RequestValidation,
}

impl<E: Endpoint> Endpoint for RequestValidationEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let problems = self.validation.check_parameters(
            req.method().as_str(),
            req.uri().path(),
            req.uri().query(),
        );
        if !problems.is_empty() {
            return Ok(json_error(StatusCode::BAD_REQUEST, problems.join("; ")));
        }
        let key = (
            req.method().as_str().to_owned(),
            self.validation.routes.label(req.uri().path()).to_owned(),
        );
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json || !self.validation.bodies.contains_key(&key) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let bytes = req.take_body().into_bytes().await?;
        let body: Value = match serde_json::from_slice(&bytes) {
            Ok(body) => body,
            Err(err) => {
                return Ok(json_error(
                    StatusCode::BAD_REQUEST,
                    format!("the request body is not valid JSON: {err}"),
                ))
            }
        };
        if let Some(problems) = self.validation.check(&key.0, req.uri().path(), &body) {
            if !problems.is_empty() {
                return Ok(json_error(StatusCode::BAD_REQUEST, problems.join("; ")));
            }
        }
        req.set_body(Body::from(bytes));
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn validation() -> RequestValidation {
        let spec = json!({
            "paths": {"/orders": {"post": {"requestBody": {"content": {"application/json; charset=utf-8": {
                "schema": {"$ref": "#/components/schemas/CreateOrder"}}}}}}},
            "components": {"schemas": {
                "Method": {"type": "string", "enum": ["card", "paypal"]},
                "CreateOrder": {"type": "object", "required": ["product_id", "quantity", "method"], "properties": {
                    "product_id": {"type": "integer", "format": "int32"},
                    "quantity": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 100},
                    "method": {"$ref": "#/components/schemas/Method"},
                    "email": {"type": "string", "minLength": 3, "maxLength": 10},
                    "amount": {"type": "string", "format": "decimal"}
                }}
            }}
        });
        RequestValidation::from_spec(&spec, RouteTemplates::new(["/orders"]))
    }

    #[test]
    fn every_problem_is_named_by_field() {
        let problems = validation()
            .check("POST", "/orders", &json!({"product_id": "one", "quantity": 0, "method": "cash", "email": "x", "amount": "ten"}))
            .unwrap();
        assert_eq!(
            problems,
            // Fields in name order.
            [
                "`amount` must be a decimal number, got \"ten\"",
                "`email` must be at least 3 characters long",
                "`method` must be one of card, paypal, got \"cash\"",
                "`product_id` must be an integer, got \"one\"",
                "`quantity` must be at least 1, got 0",
            ]
        );
    }

    #[test]
    fn missing_fields_wrong_shapes_and_ranges_are_reported() {
        let v = validation();
        assert_eq!(
            v.check("POST", "/orders", &json!({"quantity": 1})).unwrap(),
            ["`product_id` is required", "`method` is required"]
        );
        assert_eq!(
            v.check("POST", "/orders", &json!([1])).unwrap(),
            ["the body must be a JSON object, got an array"]
        );
        assert_eq!(
            v.check(
                "POST",
                "/orders",
                &json!({"product_id": 9_999_999_999_i64, "quantity": 1.5, "method": "card"})
            )
            .unwrap(),
            [
                "`product_id` is out of range: 9999999999",
                "`quantity` must be an integer, got 1.5"
            ]
        );
    }

    #[test]
    fn nul_characters_are_refused_in_strings() {
        let v = validation();
        assert_eq!(
            v.check(
                "POST",
                "/orders",
                &json!({"product_id": 1, "quantity": 1, "method": "card", "email": "a\0bc"})
            )
            .unwrap(),
            ["`email` must not contain NUL characters"]
        );
    }

    #[test]
    fn path_and_query_parameters_are_checked_by_name() {
        let spec = json!({
            "paths": {"/stock/{product_id}": {"put": {"parameters": [
                {"name": "product_id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int32"}},
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1}},
                {"name": "kind", "in": "query", "required": false, "schema": {"type": "string", "enum": ["a", "b"]}}
            ]}}}
        });
        let v = RequestValidation::from_spec(&spec, RouteTemplates::new(["/stock/{product_id}"]));
        assert_eq!(
            v.check_parameters("PUT", "/stock/abc", Some("limit=0&kind=c")),
            [
                "`product_id` must be an integer, got \"abc\"",
                "`limit` must be at least 1, got 0",
                "`kind` must be one of a, b, got \"c\"",
            ]
        );
        assert!(v
            .check_parameters("PUT", "/stock/7", Some("limit=5&kind=a"))
            .is_empty());
        assert!(
            v.check_parameters("GET", "/stock/abc", None).is_empty(),
            "other methods are not checked"
        );
    }

    #[test]
    fn valid_bodies_and_other_routes_pass() {
        let v = validation();
        assert!(v
            .check(
                "POST",
                "/orders",
                &json!({"product_id": 1, "quantity": 2, "method": "card", "amount": 9.5})
            )
            .unwrap()
            .is_empty());
        assert!(v.check("GET", "/orders", &json!({})).is_none());
    }
}
