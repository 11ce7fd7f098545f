//! The edge's text rules (docs/contract.md, "Input"), stated in the document each service serves,
//! so that a client — and a fuzzer — knows what is refused before a handler runs:
//!
//! - no C0 control character other than tab, line feed and carriage return in a request body's
//!   text: values and keys, at any depth, also in fields the service ignores ([`crate::strict_json`]);
//!   an object body takes any other field, as long as its text follows the same rule;
//! - none, percent-encoded or not, in a string query or header parameter;
//! - a text the services count after trimming (every string with a `minLength` of 1 or more) must
//!   hold a character other than white space.
//!
//! A schema that states its own `pattern`, `enum`, `const` or `format` keeps it.

use serde_json::{Map, Value, json};

/// Text without the refused control characters (ECMA-262, as JSON Schema's `pattern`).
const TEXT: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$";
/// Such text with at least one character that is not white space.
const NON_BLANK_TEXT: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$";
/// The component every other field of a body refers to.
const ANY_TEXT: &str = "JsonText";

/// Adds the rules to a serialised OpenAPI document.
pub(crate) fn state(doc: &mut Value) {
    let mut bodies = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter(|operation| operation.is_object()) {
                for parameter in operation.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                    let located = parameter.get("in").and_then(Value::as_str);
                    if matches!(located, Some("query" | "header"))
                        && let Some(schema) = parameter.get_mut("schema")
                    {
                        restrict_string(schema);
                    }
                }
                let body = operation.pointer_mut("/requestBody/content/application~1json/schema");
                if let Some(body) = body {
                    restrict(body, &mut bodies);
                }
            }
        }
    }
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    let mut done = Vec::new();
    while let Some(name) = bodies.pop() {
        if done.contains(&name) {
            continue;
        }
        if let Some(schema) = schemas.get_mut(&name) {
            restrict(schema, &mut bodies);
        }
        done.push(name);
    }
    schemas.insert(
        ANY_TEXT.to_owned(),
        json!({
            "description": "Any JSON value whose text (strings and keys, at any depth) has no control character but tab, line feed and carriage return",
            "anyOf": [
                {"type": "string", "pattern": TEXT},
                {"type": ["number", "boolean", "null"]},
                {"type": "array", "items": {"$ref": format!("#/components/schemas/{ANY_TEXT}")}},
                {"type": "object", "propertyNames": {"pattern": TEXT},
                 "additionalProperties": {"$ref": format!("#/components/schemas/{ANY_TEXT}")}},
            ],
        }),
    );
}

/// Restricts a body schema; the components it refers to are pushed to `refs`.
fn restrict(schema: &mut Value, refs: &mut Vec<String>) {
    let Some(object) = schema.as_object_mut() else { return };
    if let Some(name) = object.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        refs.push(name.to_owned());
        return;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for branch in object.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten() {
            restrict(branch, refs);
        }
    }
    if let Some(items) = object.get_mut("items") {
        restrict(items, refs);
    }
    if is_type(object, "object") {
        for property in
            object.get_mut("properties").and_then(Value::as_object_mut).into_iter().flat_map(|p| p.values_mut())
        {
            restrict(property, refs);
        }
        object.entry("propertyNames").or_insert_with(|| json!({"pattern": TEXT}));
        object
            .entry("additionalProperties")
            .or_insert_with(|| json!({"$ref": format!("#/components/schemas/{ANY_TEXT}")}));
    }
    restrict_string(schema);
}

/// Gives a free-text string schema its pattern.
fn restrict_string(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else { return };
    if !is_type(object, "string") || ["pattern", "enum", "const", "format"].iter().any(|k| object.contains_key(*k)) {
        return;
    }
    let counted = object.get("minLength").and_then(Value::as_u64).is_some_and(|n| n >= 1);
    object.insert("pattern".to_owned(), json!(if counted { NON_BLANK_TEXT } else { TEXT }));
}

fn is_type(object: &Map<String, Value>, name: &str) -> bool {
    match object.get("type") {
        Some(Value::String(t)) => t == name,
        Some(Value::Array(types)) => types.iter().any(|t| t == name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "paths": {"/api/things": {
                "get": {"parameters": [
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "id", "in": "path", "schema": {"type": "string"}},
                    {"name": "Key", "in": "header", "schema": {"type": "string", "pattern": "^[a-z]+$"}},
                ]},
                "post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}},
            }},
            "components": {"schemas": {
                "Thing": {"type": "object", "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "note": {"type": ["string", "null"]},
                    "email": {"type": "string", "format": "email"},
                    "kind": {"$ref": "#/components/schemas/Kind"},
                }},
                "Kind": {"type": "string", "enum": ["A", "B"]},
                "Answer": {"type": "object", "properties": {"name": {"type": "string"}}},
            }},
        })
    }

    #[test]
    fn bodies_and_parameters_get_the_text_rules() {
        let mut doc = doc();
        state(&mut doc);
        let parameters = &doc["paths"]["/api/things"]["get"]["parameters"];
        assert_eq!(parameters[0]["schema"]["pattern"], TEXT);
        assert!(parameters[1]["schema"].get("pattern").is_none() && parameters[2]["schema"].get("pattern").is_none());
        assert_eq!(parameters[3]["schema"]["pattern"], "^[a-z]+$");
        let thing = &doc["components"]["schemas"]["Thing"];
        assert_eq!(thing["properties"]["name"]["pattern"], NON_BLANK_TEXT);
        assert_eq!(thing["properties"]["note"]["pattern"], TEXT);
        assert!(thing["properties"]["email"].get("pattern").is_none());
        assert_eq!(thing["propertyNames"]["pattern"], TEXT);
        assert_eq!(thing["additionalProperties"]["$ref"], "#/components/schemas/JsonText");
        assert_eq!(doc["components"]["schemas"]["Kind"], json!({"type": "string", "enum": ["A", "B"]}));
        assert!(
            doc["components"]["schemas"]["Answer"]["properties"]["name"].get("pattern").is_none(),
            "answers untouched"
        );
        assert!(doc["components"]["schemas"]["JsonText"]["anyOf"].is_array());
    }

    #[test]
    fn the_patterns_match_what_strict_json_refuses() {
        let text = regex::Regex::new(TEXT).unwrap();
        let non_blank = regex::Regex::new(NON_BLANK_TEXT).unwrap();
        for c in (0u32..0x20).filter_map(char::from_u32) {
            let allowed = !crate::strict_json::is_forbidden_control(c);
            assert_eq!(text.is_match(&format!("a{c}b")), allowed, "U+{:04X}", c as u32);
            assert_eq!(non_blank.is_match(&format!("a{c}b")), allowed, "U+{:04X}", c as u32);
        }
        for ok in ["", " ", "Espresso cup", "é\t\n"] {
            assert!(text.is_match(ok), "{ok:?}");
        }
        for (value, want) in
            [("x", true), (" x ", true), ("\tx\n", true), ("", false), ("   ", false), ("\t\r\n", false)]
        {
            assert_eq!(non_blank.is_match(value), want, "{value:?}");
            assert_eq!(!value.trim().is_empty(), want, "{value:?}: the services count after trimming");
        }
    }
}
