use super::*;
use crate::routes;
use std::collections::BTreeSet;

fn hosted() -> Servers {
    servers(Some("http://example.test|/api/t/{slug}|/r/{slug}"))
}

fn doc(scope: Scope) -> Value {
    document_for(
        routes::table().iter().map(|r| r.describe()),
        scope,
        &hosted(),
    )
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if method != "servers" {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The table and the document name the same operations, both ways.
#[test]
fn every_route_is_documented_and_every_operation_is_a_route() {
    let doc = doc(Scope::All);
    let documented = operations(&doc);
    let table: BTreeSet<(String, String)> = routes::table()
        .iter()
        .filter(|r| !is_the_document_itself(r.surface, r.pattern))
        .map(|r| (r.method.to_string(), openapi_path(r.pattern)))
        .collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented operations that are no route: {extra:?}"
    );
    // The tenant copy leaves out exactly the operator routes.
    let tenant = operations(&self::doc(Scope::Tenant));
    for (m, p) in &table {
        assert_eq!(
            tenant.contains(&(m.clone(), p.clone())),
            !p.starts_with("/platform"),
            "{m} {p}"
        );
    }
}

#[test]
fn every_operation_answers_something_and_documents_its_errors() {
    let doc = doc(Scope::All);
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "servers" {
                continue;
            }
            let what = format!("{method} {path}");
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_string()),
                "{what}: duplicate operationId"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|s| s.starts_with('2') || s.starts_with('3')),
                "{what}: no success answer"
            );
            assert!(
                responses.contains_key("429"),
                "{what}: rate limit undocumented"
            );
            for (status, r) in responses {
                // JSON errors name their codes (the click router's 404 is an HTML page).
                if status.starts_with('4') && r["content"]["application/json"].is_object() {
                    let codes =
                        &r["content"]["application/json"]["schema"]["properties"]["error"]["enum"];
                    assert!(
                        codes.as_array().is_some_and(|c| !c.is_empty()),
                        "{what} {status}: no error codes"
                    );
                }
            }
            // Every route of the tenant API refuses a bad credential, public ones too (the
            // click router takes none).
            if path != "/{linkKey}" {
                assert!(
                    responses.contains_key("401"),
                    "{what}: a bad credential's 401 is undocumented"
                );
            }
        }
    }
}

/// Every `$ref` names a component, and every component is a valid schema object.
#[test]
fn references_resolve() {
    let doc = doc(Scope::All);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    fn walk(v: &Value, schemas: &Map<String, Value>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let name = r
                        .strip_prefix("#/components/schemas/")
                        .unwrap_or_else(|| panic!("foreign ref {r}"));
                    assert!(schemas.contains_key(name), "dangling ref {r}");
                }
                m.values().for_each(|x| walk(x, schemas));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, schemas)),
            _ => {}
        }
    }
    walk(&doc, schemas);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "http://example.test/api/t/{slug}");
}

#[test]
fn paths_and_ids() {
    assert_eq!(
        openapi_path("/partners/:id/revoke"),
        "/partners/{id}/revoke"
    );
    assert_eq!(
        operation_id("POST", "/partners/:id/revoke"),
        "postPartnersIdRevoke"
    );
    assert_eq!(operation_id("GET", "/openapi.json"), "getOpenapiJson");
    let single = super::servers(Some("|/api|/r"));
    assert_eq!(single.api, "/api");
    assert!(single.platform.is_none());
}
